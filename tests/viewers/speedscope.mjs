// speedscope.mjs - opens one of our outputs (Chrome JSON or folded stacks) in
// speedscope, as a user would, and prints what speedscope made of it as one
// JSON line for tests/t_viewers.py.
//
//   node speedscope.mjs --profile FILE --shots DIR --tag NAME
//
// speedscope is a static app: its dist/release folder is served from
// 127.0.0.1 with the profile beside it, and the page is opened at
// index.html#profileURL=<url>, the way speedscope's own docs load a profile
// from a URL (fetch() of the profile; speedscope's application.tsx,
// maybeLoadHashParamProfile). What it imported is then read back three ways:
//   - exported: speedscope's own "Export" (Ctrl+S) of the loaded profile group,
//     caught as a download: the profiles, their names, every frame name, and
//     every call as open/close events, exactly as speedscope holds them;
//   - profiles: the profile switcher's table (name and total per profile);
//   - sandwich: the Sandwich view's table (Total, Self, Symbol Name) of each
//     profile, the numbers a user reads.
// Screenshots of the Time Order and Sandwich views of every profile go to
// DIR/NAME-*.png. The console, uncaught errors and failed requests are in
// `log`; the test decides what is acceptable.
import fs from 'node:fs'
import path from 'node:path'
import {args, launch, moduleDir, newPage, run, serve} from './common.mjs'

const LOAD_TIMEOUT = 60000

run(async () => {
  const a = args(process.argv.slice(2))
  const profile = path.resolve(a.profile)
  const shots = path.resolve(a.shots)
  const tag = a.tag || path.basename(profile)
  fs.mkdirSync(shots, {recursive: true})
  const dist = path.join(moduleDir('speedscope'), 'dist', 'release')
  const version = JSON.parse(fs.readFileSync(path.join(moduleDir('speedscope'), 'package.json'))).version
  const {server, base} = await serve({'/speedscope/': dist, '/profile/': path.dirname(profile)})
  const browser = await launch()
  const result = {viewer: 'speedscope', version, browser: browser.version(), tag, shots: []}
  try {
    const {page, log} = await newPage(browser)
    result.log = log
    const url = `${base}/profile/${encodeURIComponent(path.basename(profile))}`
    await page.goto(`${base}/speedscope/index.html#profileURL=${encodeURIComponent(url)}`)
    // Loaded: the toolbar shows "name (i/N)" (or just the name for one
    // profile) and Export. Failed: speedscope's error screen, or an alert
    // (speedscope says "Successfully imported profile, but it's empty!" in one).
    const t0 = Date.now()
    let state = 'timeout'
    while (Date.now() - t0 < LOAD_TIMEOUT) {
      if (log.some(m => m.type === 'dialog')) {
        state = 'dialog'
        break
      }
      const s = await page.evaluate(() => {
        const t = document.body.innerText
        if (/Something went wrong/.test(t)) return 'error'
        if (/Export/.test(t) && document.querySelector('canvas')) return 'loaded'
        return ''
      })
      if (s) {
        state = s
        break
      }
      await page.waitForTimeout(100)
    }
    result.state = state
    result.title = await page.title()
    const shot = async name => {
      const p = path.join(shots, `${tag}-${name}.png`)
      await page.screenshot({path: p})
      result.shots.push(p)
    }
    if (state !== 'loaded') {
      result.body = (await page.evaluate(() => document.body.innerText)).slice(0, 2000)
      await shot('error')
      return result
    }
    await page.waitForTimeout(300) // let the flame chart paint for the screenshot

    // The profile switcher's table (rendered, hidden until clicked).
    result.profiles = await page.evaluate(() =>
      [...document.querySelectorAll('tr[title]')].map(tr => {
        const td = tr.querySelectorAll('td')
        return {name: tr.getAttribute('title'), total: td.length >= 3 ? td[2].innerText : null}
      }),
    )

    // speedscope's own export of what it loaded.
    const [download] = await Promise.all([
      page.waitForEvent('download', {timeout: 30000}),
      page.keyboard.press('Control+s'),
    ])
    const dl = path.join(shots, `${tag}.speedscope.json`)
    await download.saveAs(dl)
    result.exported = JSON.parse(fs.readFileSync(dl, 'utf8'))
    result.exportedPath = dl

    // Every profile: Time Order screenshot, then the Sandwich table.
    const n = Math.max(1, result.profiles.length)
    result.sandwich = []
    const label = () =>
      page.evaluate(() => {
        const m = document.body.innerText.match(/\((\d+)\/(\d+)\)/)
        return m ? Number(m[1]) : 1
      })
    for (let i = 0; i < n; i++) {
      if (i > 0) {
        await page.keyboard.press('n')
        await page.waitForFunction(k => {
          const m = document.body.innerText.match(/\((\d+)\/(\d+)\)/)
          return m && Number(m[1]) === k
        }, i + 1, {timeout: 10000})
      }
      if ((await label()) !== i + 1) throw new Error(`profile switcher did not reach ${i + 1}`)
      await page.keyboard.press('1')
      await page.waitForTimeout(200)
      await shot(`p${i + 1}-timeorder`)
      await page.keyboard.press('3')
      await page.waitForFunction(() => /Symbol Name/.test(document.body.innerText), null, {timeout: 10000})
      await page.waitForTimeout(200)
      const rows = await page.evaluate(() => {
        const out = []
        for (const tr of document.querySelectorAll('tr')) {
          const td = [...tr.querySelectorAll('td')].map(x => x.innerText.trim())
          if (td.length === 3 && /%\)$/.test(td[0]) && /%\)$/.test(td[1]))
            out.push({total: td[0], self: td[1], name: td[2]})
        }
        return out
      })
      result.sandwich.push(rows)
      await shot(`p${i + 1}-sandwich`)
    }
    return result
  } finally {
    await browser.close()
    server.close()
  }
})
