// common.mjs - what the viewer drivers (speedscope.mjs, flamesvg.mjs) share:
// finding playwright-core in the build tree, launching Debian's Chromium
// headless, a static HTTP server on 127.0.0.1 for the viewer's files and our
// outputs, and a record of everything the page printed to its console.
//
// The npm packages are installed by scripts/viewer-deps.sh into
// build/viewers/node_modules (never into the source tree), so they are found
// through SFTRACE_VIEWERS_MODULES, not through Node's resolution from here.
import {createRequire} from 'node:module'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'

export const MODULES = process.env.SFTRACE_VIEWERS_MODULES || ''
export const CHROMIUM = process.env.SFTRACE_CHROMIUM || '/usr/bin/chromium'

export function requireModule(name) {
  if (!MODULES) throw new Error('SFTRACE_VIEWERS_MODULES is not set (build/viewers/node_modules)')
  return createRequire(path.join(MODULES, 'noop.js'))(name)
}

export function moduleDir(name) {
  return path.join(MODULES, name)
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
}

// Serves mounts ({'/prefix/': '/dir'}) on 127.0.0.1 at a free port. Only files
// under a mount's directory are served; anything else is a 404.
export async function serve(mounts) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1')
    const p = decodeURIComponent(url.pathname)
    if (p === '/favicon.ico') {
      // Chromium asks for one with every document: no error in the console.
      res.writeHead(204)
      res.end()
      return
    }
    for (const [prefix, dir] of Object.entries(mounts)) {
      if (!p.startsWith(prefix)) continue
      const file = path.resolve(dir, p.slice(prefix.length) || 'index.html')
      if (!file.startsWith(path.resolve(dir) + path.sep)) break
      fs.readFile(file, (err, data) => {
        if (err) {
          res.writeHead(404)
          res.end()
          return
        }
        res.writeHead(200, {
          'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream',
          'Cache-Control': 'no-store',
        })
        res.end(data)
      })
      return
    }
    res.writeHead(404)
    res.end()
  })
  await new Promise(ok => server.listen(0, '127.0.0.1', ok))
  return {server, base: `http://127.0.0.1:${server.address().port}`}
}

// Launches Chromium headless. --no-sandbox: the suite runs as root in CI,
// where Chromium refuses to start with its sandbox.
export async function launch() {
  const {chromium} = requireModule('playwright-core')
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--use-gl=swiftshader', '--enable-unsafe-swiftshader'],
    timeout: 60000,
  })
}

// A page whose console messages, uncaught errors and failed requests are
// kept in `log` (each {type, text}), in the order they happened.
export async function newPage(browser, opts = {}) {
  const context = await browser.newContext({
    viewport: {width: opts.width || 1280, height: opts.height || 800},
    acceptDownloads: true,
  })
  const page = await context.newPage()
  const log = []
  page.on('console', m => log.push({type: m.type(), text: m.text()}))
  page.on('pageerror', e => log.push({type: 'pageerror', text: String(e && e.stack || e)}))
  page.on('requestfailed', r => log.push({type: 'requestfailed', text: r.url() + ' ' + (r.failure() || {}).errorText}))
  page.on('response', r => {
    if (r.status() >= 400) log.push({type: 'http', text: r.status() + ' ' + r.url()})
  })
  page.on('dialog', d => {
    log.push({type: 'dialog', text: d.message()})
    d.dismiss().catch(() => {})
  })
  return {context, page, log}
}

// Parses --key value arguments into an object; bare words go to `_`.
export function args(argv) {
  const out = {_: []}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a.startsWith('--')) out[a.slice(2)] = argv[++i]
    else out._.push(a)
  }
  return out
}

// Runs main() and writes its result as JSON to the file named by --result
// (a pipe would need care: process.exit() cuts pending writes), then exits
// 0; a thrown error writes {"fatal": ...} and exits 2, so the Python side can
// tell "the viewer misbehaved" (a result to assert on) from "the driver broke".
export function run(main) {
  const out = args(process.argv.slice(2)).result
  const put = r => (out ? fs.writeFileSync(out, JSON.stringify(r)) : fs.writeSync(1, JSON.stringify(r) + '\n'))
  main().then(
    r => {
      put(r)
      process.exit(0)
    },
    e => {
      put({fatal: String((e && e.stack) || e)})
      process.exit(2)
    },
  )
}
