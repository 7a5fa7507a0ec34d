// SPDX-License-Identifier: MPL-2.0
// Validates Prometheus Operator objects (a JSON list on stdin) against the
// schemas of their CRDs, as @kubernetes-models generates them. Prints one
// line per object; exits 1 if any is invalid or of a kind it does not know.
import * as v1 from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const input = await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => (text += chunk));
  process.stdin.on("end", () => resolve(text));
});
let failed = false;
for (const object of JSON.parse(input)) {
  const what = `${object.kind}/${object.metadata?.name}`;
  const model = object.apiVersion === "monitoring.coreos.com/v1" ? v1[object.kind] : undefined;
  if (model === undefined) {
    console.log(`no schema for ${object.apiVersion} ${what}`);
    failed = true;
    continue;
  }
  try {
    new model(object).validate();
    console.log(`ok ${what}`);
  } catch (error) {
    console.log(`invalid ${what}: ${error.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
