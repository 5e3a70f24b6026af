// flamesvg.mjs - opens a flame graph SVG of `sftrace flame` in Chromium, as a
// user would, and prints what it did as one JSON result for t_viewers.py.
//
//   node flamesvg.mjs --svg FILE --shots DIR --tag NAME --click FUNC --search TERM
//                     [--click-under F]
//
// The SVG is served from 127.0.0.1 and opened on its own (not inside a
// page), so its script runs as it would from a file. Then, with real mouse
// and keyboard input:
//   1. before: every frame (#frames > g: name, x, width, shown or not);
//   2. a click on the widest frame named FUNC (with --click-under F, the
//      widest narrower than F times the root: a zoom that changes the
//      geometry whatever the timings) (the middle of its rect), and
//      every frame again: the test checks the clicked frame now spans the
//      full width, its callees scaled with it, its callers kept, the rest
//      hidden;
//   3. a click on "Reset zoom", and every frame again;
//   4. TERM typed into the search box: the "Matched: ..." text and the frames
//      drawn in the highlight colour.
// Screenshots of each step go to DIR/NAME-*.png.
import fs from 'node:fs'
import path from 'node:path'
import {args, launch, newPage, run, serve} from './common.mjs'

const frames = page =>
  page.evaluate(() =>
    [...document.querySelectorAll('#frames > g')].map((g, i) => {
      const r = g.querySelector('rect')
      const t = g.querySelector('text')
      return {
        i,
        name: g.getAttribute('data-n'),
        parent: Number(g.getAttribute('data-p')),
        x: Number(r.getAttribute('x')),
        w: Number(r.getAttribute('width')),
        y: Number(r.getAttribute('y')),
        fill: r.getAttribute('fill'),
        label: t ? t.textContent : '',
        shown: getComputedStyle(g).display !== 'none',
      }
    }),
  )

run(async () => {
  const a = args(process.argv.slice(2))
  const svg = path.resolve(a.svg)
  const shots = path.resolve(a.shots)
  const tag = a.tag || path.basename(svg)
  fs.mkdirSync(shots, {recursive: true})
  const {server, base} = await serve({'/f/': path.dirname(svg)})
  const browser = await launch()
  const result = {viewer: 'chromium (SVG)', browser: browser.version(), tag, shots: []}
  try {
    const {page, log} = await newPage(browser, {width: 1300, height: 900})
    result.log = log
    const shot = async name => {
      const p = path.join(shots, `${tag}-${name}.png`)
      await page.screenshot({path: p, timeout: 20000})
      result.shots.push(p)
    }
    await page.goto(`${base}/f/${encodeURIComponent(path.basename(svg))}`)
    await page.waitForSelector('#frames > g', {timeout: 30000})
    result.contentType = await page.evaluate(() => document.contentType)
    result.width = await page.evaluate(() => Number(document.documentElement.getAttribute('width')))
    result.before = await frames(page)
    await shot('1-loaded')

    // The widest frame of that name (other than the root) is clicked.
    const under = a['click-under'] ? Number(a['click-under']) * result.before[0].w : Infinity
    const cands = result.before.filter(f => f.name === a.click && f.i > 0 && f.w < under)
    if (!cands.length) throw new Error(`no frame named ${a.click}`)
    const target = cands.reduce((m, f) => (f.w > m.w ? f : m))
    result.clicked = target.i
    await page.locator(`#frames > g:nth-child(${target.i + 1}) > rect`).click()
    await page.waitForTimeout(100)
    result.zoomed = await frames(page)
    result.unzoomOpacity = await page.evaluate(() => getComputedStyle(document.getElementById('unzoom')).opacity)
    await shot('2-zoomed')

    await page.locator('#unzoom').click()
    await page.waitForTimeout(100)
    result.unzoomed = await frames(page)

    // The search box is an HTML input in a foreignObject: click it, type.
    await page.locator('#searchbox').click()
    await page.keyboard.type(a.search, {delay: 20})
    await page.waitForTimeout(200)
    result.matched = await page.evaluate(() => document.getElementById('matched').textContent)
    result.searched = await frames(page)
    await shot('3-search')
    return result
  } finally {
    await browser.close()
    server.close()
  }
})
