// Runs a Python file under real MicroPython (the WebAssembly build, MicroPython 1.29) in Node, with
// firmware/device copied into its file system so `import lauks_kit` loads the firmware itself.
// usage: node mpy_node.mjs SCRIPT.py [heap bytes]   (the script's stdout is ours; exit 1 on an exception)
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const script = process.argv[2];
const heapsize = parseInt(process.argv[3] || "1048576", 10);
const mp = await loadMicroPython({ heapsize, stdout: (t) => process.stdout.write(t + "\n"),
                                   stderr: (t) => process.stderr.write(t + "\n") });

function copyTree(from, to) {
  mp.FS.mkdirTree(to);
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    if (entry.name === "__pycache__") continue;
    const src = path.join(from, entry.name);
    const dst = to + "/" + entry.name;
    if (entry.isDirectory()) copyTree(src, dst);
    else mp.FS.writeFile(dst, fs.readFileSync(src));
  }
}
copyTree(path.join(here, "device"), "/lib");
mp.FS.mkdirTree("/work");
try {
  mp.runPython("import sys\nsys.path.insert(0, '/lib')\nimport os\nos.chdir('/work')");
  // "#---" lines split the script into steps run one after another, each from the top level, so the
  // garbage collector (which cannot scan the WebAssembly stack mid-call) sees only globals between them.
  for (const step of fs.readFileSync(script, "utf8").split(/^#---.*$/m)) mp.runPython(step);
} catch (e) {
  process.stderr.write(String(e) + "\n");
  process.exit(1);
}
