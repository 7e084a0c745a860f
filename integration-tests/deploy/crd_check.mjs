// Checks the rendered layout's Prometheus Operator objects against the
// schemas of its CRDs (@kubernetes-models/prometheus-operator).
//   node crd_check.mjs RENDERED.yaml NODE_MODULES
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";

const [rendered, modules] = process.argv.slice(2);
const { ServiceMonitor } = await import(
  `${modules}/@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor.js`
);
// YAML to JSON with the PyYAML the other checks use.
const objects = JSON.parse(
  execFileSync("python3", [
    "-c",
    "import json, sys, yaml; print(json.dumps([o for o in yaml.safe_load_all(open(sys.argv[1])) if o]))",
    rendered,
  ]),
);
let checked = 0;
for (const object of objects) {
  if (object.kind !== "ServiceMonitor") continue;
  new ServiceMonitor(object).validate();
  checked++;
}
console.log(`${rendered}: ${checked} ServiceMonitor(s) valid against the Prometheus Operator's schema`);
