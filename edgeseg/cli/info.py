"""``edgeseg info MODEL``: what a model is and how edgeseg will run it."""

from __future__ import annotations

import argparse
import json

from edgeseg.formats import supported_names

HELP = "show a model's metadata, input, outputs and backend"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("info", help=HELP, description=HELP)
    parser.add_argument("model", help=f"model file or folder ({supported_names()})")
    parser.add_argument("--backend", default="auto", metavar="NAME", help="backend to load it with (default auto)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def run(args: argparse.Namespace) -> int:
    from edgeseg.backends import select_backend

    backend = select_backend(args.model, args.backend)(args.model)
    meta, spec, layout = backend.metadata, backend.input_spec, backend.output_layout
    info = {
        "model": str(args.model),
        **backend.describe(),
        "task": meta.task,
        "classes": meta.nc,
        "names": meta.names,
        "imgsz": list(spec.shape),
        "stride": meta.stride,
        "input": {"name": spec.name, "shape": list(spec.blob_shape), "layout": spec.layout, "dtype": spec.dtype},
        "output_layout": layout.describe(),
        "metadata": {k: v for k, v in meta.extras.items() if _jsonable(v)},
    }
    if args.json:
        print(json.dumps(info, indent=1, default=str))
        return 0
    names = list(meta.names.values())
    shown = ", ".join(names[:8]) + (f", ... ({len(names)} total)" if len(names) > 8 else "")
    lines = [
        f"model      {info['model']}",
        f"backend    {backend.name}" + (f" ({', '.join(info['providers'])})" if info.get("providers") else ""),
        f"task       {meta.task or 'unknown (no metadata)'}",
        f"input      {spec.name} {list(spec.blob_shape)} {spec.layout} {spec.dtype}",
        "outputs    " + "; ".join(f"{o['name']} {o['shape']}" for o in info.get("outputs", [])),
        f"layout     {layout.kind}" + ("" if layout.needs_nms else " (end-to-end, no NMS)"),
        f"masks      {layout.nm} prototypes",
        f"classes    {meta.nc}: {shown}",
        f"stride     {meta.stride}",
    ]
    for key in ("description", "author", "version", "date", "license"):
        if key in meta.extras:
            lines.append(f"{key:<10} {meta.extras[key]}")
    print("\n".join(lines))
    return 0


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False
