"""A small kustomize, for CI machines without kubectl or kustomize: builds deploy/k8s's overlays
with exactly the kustomization features they use, so every rendered object can be validated.

Supported: `resources` (files and folders), `namespace`, `images` (newName, newTag, digest),
`patches` (JSON 6902 operations add/replace/remove, inline or from a file, with a target of
group/version/kind/name), `configMapGenerator` (literals; behavior create, merge, replace;
kustomize's content-hash name suffix, and the references to the ConfigMap renamed).
Anything else raises Unsupported: use a supported feature, or add it here. Where kubectl is
installed, tests/deploy/test_kubernetes.py checks this renders what `kubectl kustomize` does.
"""
import copy
import hashlib
import json
import re
from pathlib import Path

import yaml

KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "namespace", "images", "patches", "configMapGenerator"}
GENERATOR_FIELDS = {"name", "literals", "behavior"}
# Kinds kustomize leaves without a namespace (the cluster-scoped ones these manifests use).
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PersistentVolume", "StorageClass", "IngressClass", "PriorityClass"}


class Unsupported(ValueError):
    pass


def build(path):
    """The objects `kustomize build path` outputs (in no particular order)."""
    objects, generated = _build(Path(path))
    return _apply_hash_suffixes(objects, generated)


def _build(folder):
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - KUSTOMIZATION_FIELDS
    if unknown:
        raise Unsupported(f"{folder}/kustomization.yaml uses {sorted(unknown)}")
    objects, generated = [], set()
    for entry in spec.get("resources", []):
        target = (folder / entry).resolve()
        if target.is_dir():
            more, more_generated = _build(target)
            objects += more
            generated |= more_generated
        else:
            objects += [o for o in yaml.safe_load_all(target.read_text()) if o]
    for generator in spec.get("configMapGenerator", []):
        _generate(objects, generated, generator, folder)
    for patch in spec.get("patches", []):
        _patch(objects, patch, folder)
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = spec["namespace"]
    for image in spec.get("images", []):
        _set_image(objects, image)
    return objects, generated


# -- configMapGenerator ---------------------------------------------------------------------------

def _generate(objects, generated, generator, folder):
    unknown = set(generator) - GENERATOR_FIELDS
    if unknown:
        raise Unsupported(f"{folder}: configMapGenerator {generator.get('name')} uses {sorted(unknown)}")
    name = generator["name"]
    data = {}
    for literal in generator.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    behavior = generator.get("behavior", "create")
    existing = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name]
    if behavior == "create":
        if existing:
            raise Unsupported(f"{folder}: ConfigMap {name} already exists (use behavior: merge or replace)")
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
        generated.add(name)
    elif behavior in ("merge", "replace"):
        if len(existing) != 1:
            raise Unsupported(f"{folder}: no ConfigMap {name} to {behavior}")
        target = existing[0]
        target["data"] = {**target.get("data", {}), **data} if behavior == "merge" else data
    else:
        raise Unsupported(f"{folder}: configMapGenerator behavior {behavior!r}")


def kustomize_hash(config_map):
    """kustomize's name suffix for a ConfigMap (api/hasher): sha256 of the JSON of kind, name and
    data, its first ten hex digits with 0, 1, 3, a, e spelt g, h, k, m, t. kustomize v5 looks
    the name up with a path ("metadata/name") that finds nothing, so it hashes an empty name:
    the suffix depends on the data alone (and `kubectl kustomize` agrees, see the tests)."""
    encoded = json.dumps({"kind": "ConfigMap", "name": "", "data": config_map.get("data", "")},
                         sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # Go's json.Marshal escapes these in strings.
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        encoded = encoded.replace(char, escape)
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _apply_hash_suffixes(objects, generated):
    renamed = {}
    for obj in objects:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] in generated:
            old = obj["metadata"]["name"]
            obj["metadata"]["name"] = f"{old}-{kustomize_hash(obj)}"
            renamed[(obj["metadata"].get("namespace"), old)] = obj["metadata"]["name"]
    for obj in objects:
        namespace = obj.get("metadata", {}).get("namespace")
        for pod in _pod_specs(obj):
            for container in pod.get("containers", []) + pod.get("initContainers", []):
                for source in container.get("envFrom", []):
                    ref = source.get("configMapRef")
                    if ref and (namespace, ref["name"]) in renamed:
                        ref["name"] = renamed[(namespace, ref["name"])]
                for variable in container.get("env", []):
                    ref = variable.get("valueFrom", {}).get("configMapKeyRef")
                    if ref and (namespace, ref["name"]) in renamed:
                        ref["name"] = renamed[(namespace, ref["name"])]
            for volume in pod.get("volumes", []):
                ref = volume.get("configMap")
                if ref and (namespace, ref["name"]) in renamed:
                    ref["name"] = renamed[(namespace, ref["name"])]
    return objects


def _pod_specs(obj):
    spec = obj.get("spec", {})
    if obj["kind"] == "Pod":
        yield spec
    elif obj["kind"] == "CronJob":
        yield spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})
    elif isinstance(spec.get("template"), dict) and "spec" in spec["template"]:
        yield spec["template"]["spec"]


# -- images -----------------------------------------------------------------------------------------

def split_image(image):
    """'registry:5000/a/b:tag@sha256:x' -> ('registry:5000/a/b', 'tag', 'sha256:x')."""
    name, _, digest = image.partition("@")
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest or None


def _set_image(objects, rule):
    unknown = set(rule) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise Unsupported(f"images entry {rule.get('name')} uses {sorted(unknown)}")
    for obj in objects:
        for pod in _pod_specs(obj):
            for container in pod.get("containers", []) + pod.get("initContainers", []):
                name, tag, digest = split_image(container["image"])
                if name != rule["name"]:
                    continue
                name = rule.get("newName", name)
                if "digest" in rule:
                    container["image"] = f"{name}@{rule['digest']}"
                    continue
                tag = str(rule["newTag"]) if "newTag" in rule else tag
                image = f"{name}:{tag}" if tag else name
                container["image"] = f"{image}@{digest}" if digest and "newTag" not in rule else image


# -- patches (JSON 6902) -----------------------------------------------------------------------------

def _patch(objects, patch, folder):
    unknown = set(patch) - {"target", "patch", "path"}
    if unknown:
        raise Unsupported(f"{folder}: patch uses {sorted(unknown)}")
    text = patch["patch"] if "patch" in patch else (folder / patch["path"]).read_text()
    operations = yaml.safe_load(text)
    if not isinstance(operations, list):
        raise Unsupported(f"{folder}: only JSON 6902 patches (a list of operations) are supported")
    target = patch.get("target") or {}
    if set(target) - {"group", "version", "kind", "name"}:
        raise Unsupported(f"{folder}: patch target {target}")
    matched = [o for o in objects if _selected(o, target)]
    if not matched:
        raise Unsupported(f"{folder}: patch target {target} matches nothing")
    for obj in matched:
        for operation in operations:
            _apply_operation(obj, operation)


def _selected(obj, target):
    group, _, version = obj["apiVersion"].rpartition("/")
    checks = [("group", group), ("version", version), ("kind", obj["kind"])]
    if any(key in target and target[key] != value for key, value in checks):
        return False
    return "name" not in target or re.fullmatch(target["name"], obj["metadata"]["name"]) is not None


def _pointer(path):
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def _apply_operation(obj, operation):
    op, parts = operation["op"], _pointer(operation["path"])
    parent = obj
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    value = copy.deepcopy(operation.get("value"))
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if op == "add":
            parent.insert(index, value)
        elif op == "replace":
            parent[index] = value
        elif op == "remove":
            del parent[index]
        else:
            raise Unsupported(f"JSON patch op {op}")
    else:
        if op in ("replace", "remove") and last not in parent:
            raise KeyError(f"JSON patch {op} {operation['path']}: no such field")
        if op in ("add", "replace"):
            parent[last] = value
        elif op == "remove":
            del parent[last]
        else:
            raise Unsupported(f"JSON patch op {op}")
