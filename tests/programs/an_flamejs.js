// an_flamejs.js - runs the script of an `sftrace flame` SVG under node with a
// small DOM stand-in, for t_flame.py: zooms on frame ZOOM, searches for
// TERM, and prints what the script did as JSON.
//
// usage: node an_flamejs.js FLAME.svg ZOOM TERM
'use strict';
const fs = require('fs');
const [svgPath, zoomArg, term] = process.argv.slice(2);
const svg = fs.readFileSync(svgPath, 'utf8');

function unxml(s) {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

function elem(attrs, text) {
  const e = {
    attrs: Object.assign({}, attrs), style: {}, textContent: text || '', handlers: {},
    getAttribute(k) { return k in this.attrs ? this.attrs[k] : null; },
    setAttribute(k, v) { this.attrs[k] = String(v); },
    addEventListener(k, fn) { this.handlers[k] = fn; },
  };
  e.firstChild = { nodeValue: ' ' };
  return e;
}

function attrsOf(tag) {
  const out = {};
  for (const m of tag.matchAll(/([\w-]+)="([^"]*)"/g)) out[m[1]] = unxml(m[2]);
  return out;
}

const frames = [];
const re = /<g (data-p="[^"]*" data-n="[^"]*")><title>([^<]*)<\/title><rect ([^>]*)\/><text ([^>]*)>([^<]*)<\/text><\/g>/g;
for (const m of svg.matchAll(re)) {
  const g = elem(attrsOf(m[1]));
  g.title = elem({}, unxml(m[2]));
  g.rect = elem(attrsOf(m[3]));
  g.text = elem(attrsOf(m[4]), unxml(m[5]));
  g.querySelector = (sel) => ({ rect: g.rect, text: g.text, title: g.title })[sel];
  frames.push(g);
}
const width = +/<svg[^>]* width="(\d+)"/.exec(svg)[1];
const byId = {
  details: elem({}), matched: elem({}), unzoom: elem({}), searchbox: elem({}),
};
byId.searchbox.value = '';
global.document = {
  documentElement: elem({ width: String(width) }),
  getElementById: (id) => byId[id],
  querySelectorAll: (sel) => (sel === '#frames > g' ? frames : []),
};
global.window = { addEventListener() {} };

const script = /<!\[CDATA\[([\s\S]*?)\]\]>/.exec(svg)[1];
const init = new Function(script + '\nreturn {init, zoom, unzoom, search};')();
init.init({});

function state() {
  return frames.map((g) => ({
    x: +g.rect.getAttribute('x'), w: +g.rect.getAttribute('width'),
    shown: g.style.display !== 'none', label: g.text.textContent,
    fill: g.rect.getAttribute('fill'),
  }));
}
const out = { frames: frames.length };
const zi = +zoomArg;
frames[zi].handlers.click({ stopPropagation() {} });
out.zoomed = state();
byId.unzoom.handlers.click({});
out.unzoomed = state();
byId.searchbox.value = term;
byId.searchbox.handlers.input({});
out.matched = byId.matched.textContent;
out.searched = state();
frames[1].handlers.mouseover({});
out.details = byId.details.firstChild.nodeValue;
console.log(JSON.stringify(out));
