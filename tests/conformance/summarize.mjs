// Summarises one conformance run for scripts/conformance: one line per (revision, scenario)
// and a final count. Usage: node summarize.mjs <results dir> <label> <revision>...
// where <results dir>/<revision>/server-<scenario>-<timestamp>/checks.json are the suite's
// results. The scenarios and their order come from the suite's frozen requirement sets
// (requirements/<revision>.yaml: the `server:` list, then `not_scored` entries whose leg is
// server), so a scenario that left no result is reported too. A scenario fails when any of its
// checks has status FAILURE; one whose checks were all SKIPPED is SKIP. Exit 0, or 2 when
// there is nothing to summarise (the suite did not run).
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const [root, label, ...revisions] = process.argv.slice(2);
const here = dirname(fileURLToPath(import.meta.url));
const requirements = join(here, "node_modules/@modelcontextprotocol/conformance/requirements");

/** [{ name, notScored?: reason }] for a revision's server leg, in the suite's order. */
function scenarios(revision) {
  const lines = readFileSync(join(requirements, `${revision}.yaml`), "utf8").split("\n");
  const out = [];
  let section;
  let entry;
  for (const line of lines) {
    const top = /^([a-z_]+):/.exec(line);
    if (top) {
      section = top[1];
      continue;
    }
    if (section === "server") {
      const m = /^\s+-\s+(\S+)\s*$/.exec(line);
      if (m) out.push({ name: m[1] });
    } else if (section === "not_scored") {
      let m;
      if ((m = /^\s+-\s+scenario:\s*(\S+)/.exec(line))) entry = { name: m[1] };
      else if ((m = /^\s+leg:\s*(\S+)/.exec(line)) && entry) entry.leg = m[1];
      else if ((m = /^\s+reason:\s*(\S+)/.exec(line)) && entry?.leg === "server") {
        out.push({ name: entry.name, notScored: m[1] });
        entry = undefined;
      }
    }
  }
  return out;
}

/** scenario name -> checks, from <dir>/server-<scenario>-<timestamp>/checks.json. */
function results(dir) {
  const map = new Map();
  if (!existsSync(dir)) return map;
  for (const d of readdirSync(dir)) {
    const m = /^server-(.+)-(\d{4}-\d\d-\d\dT[\d-]+Z)$/.exec(d);
    const file = join(dir, d, "checks.json");
    if (!m || !existsSync(file)) continue;
    try {
      map.set(m[1], JSON.parse(readFileSync(file, "utf8")));
    } catch {
      map.set(m[1], null);
    }
  }
  return map;
}

let pass = 0;
let fail = 0;
let seen = 0;
const perRevision = [];
for (const revision of revisions) {
  const got = results(join(root, revision));
  seen += got.size;
  let rPass = 0;
  let rTotal = 0;
  for (const { name, notScored } of scenarios(revision)) {
    const checks = got.get(name);
    let verdict;
    if (checks === undefined) verdict = "FAIL (no result)";
    else if (checks === null) verdict = "FAIL (unreadable checks.json)";
    else {
      const failed = checks.filter((c) => c.status === "FAILURE");
      if (failed.length > 0) verdict = `FAIL (${failed.length} failed checks: ${failed[0].id})`;
      else if (checks.length > 0 && checks.every((c) => c.status === "SKIPPED")) verdict = "SKIP";
      else verdict = "PASS";
    }
    const ok = !verdict.startsWith("FAIL");
    rTotal++;
    if (ok) rPass++;
    if (ok) pass++;
    else fail++;
    console.log(`${revision} ${name} ${verdict}${notScored ? `  [not scored: ${notScored}]` : ""}`);
  }
  perRevision.push(`${revision} ${rPass}/${rTotal}`);
}
// Deliberately not the bare "N passed, N failed" shape: this is a comparison report, not a
// test runner's verdict.
console.log(`conformance ${label}: ${perRevision.join(", ")} scenarios pass; in all ${pass} pass, ${fail} fail`);
process.exit(seen === 0 ? 2 : 0);
