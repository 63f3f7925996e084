#!/usr/bin/env python3
"""tests/cli/action.py - the composite action and the workflows.

Checks that ci/action.yml and ci/workflows/*.yml parse as YAML (python3-yaml)
and have the shape GitHub documents (runs.using: composite, a shell on every
run step, outputs with a value, inputs that exist), that every run: step and
every script they call passes shellcheck, and runs the action's own shell
steps locally under a simulated runner (GITHUB_ACTIONS, GITHUB_OUTPUT,
GITHUB_STEP_SUMMARY, RUNNER_TEMP set to temporary files), feeding each
step's env: mapping with the ${{ }} expressions evaluated from test inputs.
Sources of truth: GitHub's metadata syntax for composite actions and its
file-command format; quantaudit's own exit codes and merge contract.
Exit 77 (skipped) when python3-yaml or shellcheck is missing.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("SKIP: python3-yaml is not installed (ci/setup installs it)")
    sys.exit(77)
if not shutil.which("shellcheck"):
    print("SKIP: shellcheck is not installed (ci/setup installs it)")
    sys.exit(77)

top = os.environ.get("QA_TOP_SRCDIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
qa_bin = os.environ.get("QA_BIN") or os.path.join(top, "quantaudit")
os.chdir(top)
passed = failed = 0


def check(name, ok, why=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok    " + name)
    else:
        failed += 1
        print("FAIL  %s: %s" % (name, why))


EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")

# ---------------------------------------------------------------- shape
action = yaml.safe_load(open("ci/action.yml"))
check("action-composite", action.get("runs", {}).get("using") == "composite")
inputs = action.get("inputs", {})
steps = action["runs"]["steps"]
check("action-run-steps-have-shell", all("shell" in s for s in steps if "run" in s))
check("action-steps-run-or-uses", all(("run" in s) != ("uses" in s) for s in steps))
check("action-outputs-have-value", set(action.get("outputs", {})) == {"verdict", "report"} and
      all("value" in o for o in action["outputs"].values()))
used = set(m.group(1)[len("inputs."):] for m in EXPR.finditer(open("ci/action.yml").read())
           if m.group(1).startswith("inputs."))
check("action-inputs-exist", used <= set(inputs), sorted(used - set(inputs)))
check("action-inputs-named", {"reference", "artifact", "command", "policy", "imatrix", "shard", "report-id",
                              "threads", "junit", "args"} <= set(inputs))
# every QA_* variable the run step passes is one action-run reads
run_step = next(s for s in steps if s.get("id") == "run")
script = open("ci/action-run").read()
unread = [k for k in run_step["env"] if k not in script]
check("action-env-read", not unread, unread)

workflows = sorted(glob.glob("ci/workflows/*.yml"))
check("workflows-present", [os.path.basename(w) for w in workflows] ==
      ["ci.yml", "pre-release.yml", "scheduled-audit.yml"], workflows)
for w in workflows:
    d = yaml.safe_load(open(w))
    on = d.get("on", d.get(True))  # YAML 1.1 reads the key 'on' as true
    jobs = d.get("jobs", {})
    ok = bool(on) and bool(jobs) and all("runs-on" in j and j.get("steps") for j in jobs.values()) and \
        all(("run" in s) != ("uses" in s) for j in jobs.values() for s in j["steps"])
    check("workflow-shape-" + os.path.basename(w), ok)
sched = yaml.safe_load(open("ci/workflows/scheduled-audit.yml"))["jobs"]
dl = [s for s in sched["merge"]["steps"] if s.get("uses", "").startswith("actions/download-artifact")]
check("scheduled-matrix-and-merge", sched["shard"]["strategy"]["matrix"]["shard"] == [1, 2, 3, 4] and
      sched["merge"]["needs"] == "shard" and dl and dl[0]["with"]["merge-multiple"] is True and
      dl[0]["with"]["pattern"] == "quantaudit-part-*")

# the README's copy-paste workflow parses and uses only the action's inputs;
# its policy example is one this build accepts
readme = open("README.md").read()
sec = readme[readme.index("## Use in GitHub Actions"):]
wf = yaml.safe_load(sec[sec.index("```yaml\n") + 8:sec.index("```", sec.index("```yaml\n") + 8)])
ours = [st for st in wf["jobs"]["audit"]["steps"] if "quantaudit/ci" in st.get("uses", "")]
check("readme-workflow", len(ours) == 1 and set(ours[0]["with"]) <= set(inputs), ours)
pol = sec[sec.index("```json\n") + 8:sec.index("```", sec.index("```json\n") + 8)]
pf = os.path.join(tempfile.mkdtemp(), "policy.json")
open(pf, "w").write(pol)
r = subprocess.run([qa_bin, "diff", "fixtures/models/micro-qwen2.safetensors",
                    "fixtures/models/micro-qwen2.Q4_K_M.corrupt.gguf", "--policy", pf, "--json"],
                   capture_output=True, text=True)
check("readme-policy", r.returncode in (0, 1) and '"gate"' in r.stdout, r.stderr)

# ---------------------------------------------------------------- shellcheck
tmp = tempfile.mkdtemp()
runs = [("action", s) for s in steps if "run" in s]
for w in workflows:
    for jn, j in yaml.safe_load(open(w))["jobs"].items():
        runs += [(os.path.basename(w) + ":" + jn, s) for s in j["steps"] if "run" in s]
for i, (where, s) in enumerate(runs):
    body = EXPR.sub("GHA_EXPR", s["run"])
    f = os.path.join(tmp, "run-%d.sh" % i)
    open(f, "w").write("#!/bin/bash\n" + body + "\n")
    r = subprocess.run(["shellcheck", "-s", "bash", f], capture_output=True, text=True)
    check("shellcheck-%s-step-%d" % (where, i), r.returncode == 0, r.stdout[:500])
for f in ("ci/action-run", "ci/action-build", "ci/setup"):
    r = subprocess.run(["shellcheck", f], capture_output=True, text=True)
    check("shellcheck-" + f, r.returncode == 0, r.stdout[:500])


# ---------------------------------------------------------------- local run
def run_step_locally(step, inp, env_extra, cwd):
    """Run one of the action's run: steps as the runner would: bash, the
    step's env: with its expressions evaluated, GITHUB_ACTION_PATH set."""
    ctx = {"inputs.%s" % k: inp.get(k, v.get("default", "")) for k, v in inputs.items()}
    ctx.update(env_extra.get("_ctx", {}))
    env = dict(os.environ)
    env.update({k: v for k, v in env_extra.items() if k != "_ctx"})
    for k, v in step.get("env", {}).items():
        env[k] = EXPR.sub(lambda m: str(ctx.get(m.group(1), "")), str(v))
    env["GITHUB_ACTION_PATH"] = os.path.join(top, "ci")
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                          env=env, cwd=cwd, capture_output=True, text=True)


def outputs(path):
    """The runner's reading of a GITHUB_OUTPUT file (name=value and name<<D)."""
    out, lines, i = {}, open(path).read().split("\n"), 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            j = lines.index(delim, i + 1)
            out[name] = "\n".join(lines[i + 1:j])
            i = j
        elif "=" in line:
            name, v = line.split("=", 1)
            out[name] = v
        i += 1
    return out


def runner(name):
    d = os.path.join(tmp, name)
    os.makedirs(os.path.join(d, "temp"))
    open(os.path.join(d, "output"), "w").close()
    open(os.path.join(d, "summary"), "w").close()
    return d, {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": os.path.join(d, "output"),
               "GITHUB_STEP_SUMMARY": os.path.join(d, "summary"), "RUNNER_TEMP": os.path.join(d, "temp"),
               "QUANTAUDIT_GNUPLOT": "/nonexistent/gnuplot"}


build = next(s for s in steps if s.get("id") == "build")
REF = os.path.join(top, "fixtures/models/micro-qwen2.safetensors")
ART = os.path.join(top, "fixtures/models/micro-qwen2.Q4_K_M.corrupt.gguf")

# the build step reuses an in-tree binary (a VPATH build has none: skipped)
if os.access(os.path.join(top, "quantaudit"), os.X_OK):
    d, env = runner("build")
    r = run_step_locally(build, {}, env, top)
    check("local-build-step", r.returncode == 0 and
          outputs(env["GITHUB_OUTPUT"]).get("bin") == os.path.join(top, "quantaudit"), r.stderr[-500:])

# diff under a policy: a failing verdict fails the step, everything is left to upload
d, env = runner("diff")
env["_ctx"] = {"steps.build.outputs.bin": qa_bin}
junit = os.path.join(d, "junit.xml")
r = run_step_locally(run_step, {"reference": REF, "artifact": ART, "policy": "tests/data/policy/good-full.json",
                                "junit": junit, "report-id": "AUDIT-ACTION-1"}, env, top)
o = outputs(env["GITHUB_OUTPUT"])
up = os.path.join(env["RUNNER_TEMP"], "quantaudit-out")
check("local-diff-exit-1", r.returncode == 1, r.stderr[-300:])
check("local-diff-outputs", o.get("verdict") == "fail" and o.get("report") == os.path.join(up, "report.md") and
      o.get("upload-dir") == up and o.get("upload-name") == "quantaudit-report", o)
check("local-diff-files", all(os.path.exists(os.path.join(up, f)) for f in ("report.md", "result.json", "junit.xml")))
check("local-diff-annotation", "::error title=quantaudit diff%3A divergent blk.1.ffn_up.weight::" in r.stderr)
check("local-diff-summary", open(env["GITHUB_STEP_SUMMARY"]).read().startswith("## quantaudit diff: FAIL"))
check("local-diff-report-id", "AUDIT-ACTION-1" in open(os.path.join(up, "report.md")).read())

# shards, then a merge step over the downloaded parts: the merged verdict is the unsharded one
parts = os.path.join(tmp, "parts")
os.makedirs(parts)
for k in (1, 2, 3):
    d, env = runner("shard%d" % k)
    env["_ctx"] = {"steps.build.outputs.bin": qa_bin}
    r = run_step_locally(run_step, {"reference": REF, "artifact": ART, "shard": "%d/3" % k}, env, top)
    o = outputs(env["GITHUB_OUTPUT"])
    check("local-shard-%d" % k, r.returncode == 0 and o.get("verdict") == "part" and
          o.get("upload-name") == "quantaudit-part-%d" % k, r.stderr[-300:])
    shutil.copy(os.path.join(env["RUNNER_TEMP"], "quantaudit-out", "part-%d.json" % k), parts)
d, env = runner("merge")
env["_ctx"] = {"steps.build.outputs.bin": qa_bin}
r = run_step_locally(run_step, {"command": "merge", "parts": os.path.join(parts, "part-*.json")}, env, top)
o = outputs(env["GITHUB_OUTPUT"])
check("local-merge", r.returncode == 1 and o.get("verdict") == "fail" and o.get("failing") == "1" and
      o.get("tensors") == "27", (r.returncode, o, r.stderr[-300:]))

# reproduce: its JSON is uploaded (its -o would be the rebuilt GGUF), the verdict follows its exit status
bf = os.path.join(tmp, "ref.bf16.gguf")
q = os.path.join(tmp, "a.gguf")
subprocess.run([qa_bin, "quantize", REF, "--type", "bf16", "-o", bf], check=True, capture_output=True)
subprocess.run([qa_bin, "quantize", bf, "--recipe", "Q4_K_M", "-o", q], check=True, capture_output=True)
d, env = runner("reproduce")
env["_ctx"] = {"steps.build.outputs.bin": qa_bin}
r = run_step_locally(run_step, {"command": "reproduce", "reference": bf, "artifact": q}, env, top)
o = outputs(env["GITHUB_OUTPUT"])
up = os.path.join(env["RUNNER_TEMP"], "quantaudit-out")
res = os.path.join(up, "result.json")
check("local-reproduce", r.returncode == 0 and o.get("verdict") == "pass" and os.path.exists(res) and
      json.load(open(res)).get("result") == "reproduced", (r.returncode, o, r.stderr[-300:]))
r = run_step_locally(run_step, {"command": "reproduce", "reference": bf, "artifact": q, "policy": "p.json"}, env, top)
check("local-reproduce-no-policy", r.returncode == 2 and "not reproduce" in r.stderr, r.stderr[-300:])

# misuse and hostile inputs: refused, nothing executed
d, env = runner("bad")
env["_ctx"] = {"steps.build.outputs.bin": qa_bin}
r = run_step_locally(run_step, {"command": "frobnicate"}, env, top)
check("local-unknown-command", r.returncode == 2 and "::error title=quantaudit action::unknown command" in r.stderr)
pwned = os.path.join(tmp, "pwned")
r = run_step_locally(run_step, {"reference": REF, "artifact": ART, "args": "$(touch %s) `touch %s`" % (pwned, pwned),
                                "policy": "x; touch %s" % pwned}, env, top)
check("local-hostile-inputs", r.returncode in (2, 4) and not os.path.exists(pwned), (r.returncode, r.stderr[-300:]))
r = run_step_locally(run_step, {"reference": REF, "artifact": ART, "shard": "1/3; touch " + pwned}, env, top)
check("local-bad-shard", r.returncode == 2 and not os.path.exists(pwned))

shutil.rmtree(tmp)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
