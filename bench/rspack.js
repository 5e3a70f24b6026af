// rspack.js ADDON THREADS ROOTS - load the rspack-shaped addon
// (bench/rspack_addon.c) into node and run its call trees on THREADS native
// threads; prints the checksum. bench/bench.py's rspack section runs it.
"use strict";
const [addon, threads, roots] = process.argv.slice(2);
if (!addon || !(threads > 0) || !(roots >= 0)) {
    console.error("usage: node rspack.js ADDON THREADS ROOTS");
    process.exit(2);
}
const m = require(require("path").resolve(addon));
console.log(`checksum=${m.run(Number(threads), Number(roots)).toString(16)}`);
