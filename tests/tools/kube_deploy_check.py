#!/usr/bin/python3
"""Offline checks of the Kubernetes watcher's deploy files (deploy_validate.sh).

  kube_deploy_check.py rbac RBAC.yaml
      the ClusterRole grants get, list, watch on exactly the watched
      resources (and nothing else, no other verb, no wildcard)
  kube_deploy_check.py binding RBAC.yaml DAEMONSET.yaml
      the ClusterRoleBinding binds that role to the DaemonSet's service
      account, which mounts its token
  kube_deploy_check.py nodename DAEMONSET.yaml
      msegd runs --kubernetes=in-cluster with NODE_NAME from spec.nodeName
  kube_deploy_check.py crd CRD.yaml FILE...
      every AllowList in FILE... (YAML documents, or a ConfigMap whose data
      holds them) is valid against the CRD's openAPIV3Schema

Prints what is wrong and exits 1; exits 0 silently when all is well.
"""
import re
import sys

import yaml

WANT = {
    "": {"pods", "namespaces", "nodes", "services"},
    "networking.k8s.io": {"networkpolicies"},
    "discovery.k8s.io": {"endpointslices"},
    "mseg.io": {"allowlists"},
}


def docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def one(path, kind):
    found = [d for d in docs(path) if d.get("kind") == kind]
    if len(found) != 1:
        sys.exit(f"{path}: expected one {kind}, found {len(found)}")
    return found[0]


def check_rbac(path):
    role = one(path, "ClusterRole")
    errs, got = [], {}
    for i, rule in enumerate(role.get("rules") or []):
        verbs = set(rule.get("verbs") or [])
        if verbs != {"get", "list", "watch"}:
            errs.append(f"rules[{i}]: verbs {sorted(verbs)}, want exactly get, list, watch")
        for key in ("resourceNames", "nonResourceURLs"):
            if key in rule:
                errs.append(f"rules[{i}]: unexpected {key}")
        for g in rule.get("apiGroups") or []:
            for r in rule.get("resources") or []:
                if "*" in (g, r):
                    errs.append(f"rules[{i}]: wildcard")
                got.setdefault(g, set()).add(r)
    if got != WANT:
        errs.append(f"resources {sorted((g, sorted(r)) for g, r in got.items())}, "
                    f"want {sorted((g, sorted(r)) for g, r in WANT.items())}")
    return errs


def check_binding(rbac, ds_path):
    role = one(rbac, "ClusterRole")
    sa = one(rbac, "ServiceAccount")
    b = one(rbac, "ClusterRoleBinding")
    ds = one(ds_path, "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    errs = []
    if b["roleRef"] != {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": role["metadata"]["name"]}:
        errs.append(f"roleRef {b['roleRef']} is not the ClusterRole")
    subj = {"kind": "ServiceAccount", "name": sa["metadata"]["name"],
            "namespace": sa["metadata"]["namespace"]}
    if b.get("subjects") != [subj]:
        errs.append(f"subjects {b.get('subjects')}, want [{subj}]")
    if pod.get("serviceAccountName") != sa["metadata"]["name"]:
        errs.append("the DaemonSet does not run as the bound service account")
    if ds["metadata"].get("namespace") != sa["metadata"]["namespace"]:
        errs.append("the DaemonSet and the service account are in different namespaces")
    if pod.get("automountServiceAccountToken") is not True:
        errs.append("the DaemonSet does not mount the service account token")
    return errs


def check_nodename(ds_path):
    ds = one(ds_path, "DaemonSet")
    errs = []
    for c in ds["spec"]["template"]["spec"]["containers"]:
        if c["name"] != "msegd":
            continue
        if "--kubernetes=in-cluster" not in (c.get("args") or []):
            errs.append("msegd's args lack --kubernetes=in-cluster")
        env = {e["name"]: e for e in c.get("env") or []}
        ref = env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {})
        if ref.get("fieldPath") != "spec.nodeName":
            errs.append("msegd's NODE_NAME is not the downward API's spec.nodeName")
        return errs
    return ["no msegd container"]


def validate(v, s, where, errs):
    """The subset of OpenAPI v3 a structural CRD schema uses here."""
    t = s.get("type")
    types = {"object": dict, "array": list, "string": str}
    if t in types and not isinstance(v, types[t]):
        errs.append(f"{where}: expected {t}")
        return
    if "enum" in s and v not in s["enum"]:
        errs.append(f"{where}: {v!r} not one of {s['enum']}")
    if t == "string":
        if len(v) < s.get("minLength", 0):
            errs.append(f"{where}: shorter than {s['minLength']}")
        if "pattern" in s and not re.search(s["pattern"], v):
            errs.append(f"{where}: {v!r} does not match {s['pattern']}")
    if t == "array":
        if len(v) < s.get("minItems", 0):
            errs.append(f"{where}: fewer than {s['minItems']} items")
        for i, item in enumerate(v):
            validate(item, s.get("items", {}), f"{where}[{i}]", errs)
    if t == "object":
        props = s.get("properties", {})
        for r in s.get("required", []):
            if r not in v:
                errs.append(f"{where}: missing required {r}")
        if len(v) < s.get("minProperties", 0):
            errs.append(f"{where}: fewer than {s['minProperties']} properties")
        for k, item in v.items():
            if k in props:
                validate(item, props[k], f"{where}.{k}", errs)
            elif isinstance(s.get("additionalProperties"), dict):
                validate(item, s["additionalProperties"], f"{where}.{k}", errs)
            elif props and not s.get("x-kubernetes-preserve-unknown-fields"):
                # the API server prunes it; kubectl's strict field
                # validation (the default) refuses it
                errs.append(f"{where}: unknown field {k!r}")


def allowlists(path):
    for d in docs(path):
        if d.get("kind") == "ConfigMap":
            for name, text in (d.get("data") or {}).items():
                for sub in yaml.safe_load_all(text):
                    if sub and sub.get("kind") == "AllowList":
                        yield f"{path}:{name}", sub
        elif d.get("kind") == "AllowList":
            yield path, d


def check_crd(crd_path, files):
    crd = one(crd_path, "CustomResourceDefinition")
    spec = crd["spec"]
    errs = []
    if crd["metadata"]["name"] != f"{spec['names']['plural']}.{spec['group']}":
        errs.append("metadata.name is not PLURAL.GROUP")
    if (spec["group"], spec["names"]["kind"], spec["names"]["plural"], spec["scope"]) != \
            ("mseg.io", "AllowList", "allowlists", "Namespaced"):
        errs.append("not the namespaced mseg.io AllowList / allowlists")
    vers = [v for v in spec["versions"] if v["name"] == "v1" and v["served"] and v["storage"]]
    if not vers:
        return errs + ["no served storage version v1"]
    schema = vers[0]["schema"]["openAPIV3Schema"]
    n = 0
    for f in files:
        for where, al in allowlists(f):
            n += 1
            validate(al, schema, f"{where} {al.get('metadata', {}).get('name')}", errs)
    if n == 0:
        errs.append("no AllowList in the files given")
    return errs


def main(argv):
    what = argv[1] if len(argv) > 1 else ""
    if what == "rbac" and len(argv) == 3:
        errs = check_rbac(argv[2])
    elif what == "binding" and len(argv) == 4:
        errs = check_binding(argv[2], argv[3])
    elif what == "nodename" and len(argv) == 3:
        errs = check_nodename(argv[2])
    elif what == "crd" and len(argv) >= 4:
        errs = check_crd(argv[2], argv[3:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for e in errs:
        print(e)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
