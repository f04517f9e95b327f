"""The command line: seqattn run | check | plugins | translate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from seqattn.errors import SeqattnError, TrainingStopped


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="seqattn", description="Plugin-based sequence-to-sequence learning.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and evaluate a recipe")
    run.add_argument("recipe")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--output", help="run directory (default: runs/<recipe name>)")
    run.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint")
    check = sub.add_parser("check", help="validate a recipe and build its model without training")
    check.add_argument("recipe")
    check.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    plugins = sub.add_parser("plugins", help="list registered components")
    plugins.add_argument("--json", action="store_true")
    tr = sub.add_parser("translate", help="translate stdin line by line with a finished run")
    tr.add_argument("run_dir")
    tr.add_argument("--beam", type=int, help="beam size (default: the run's search.beam)")
    tr.add_argument("--n-best", type=int, default=None, help="print the N best per input, tab-separated")
    tr.add_argument("--plot-attention", metavar="DIR", help="write one alignment heatmap (PNG) per sentence")
    tr.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"run": cmd_run, "check": cmd_check, "plugins": cmd_plugins, "translate": cmd_translate}[args.command](args)
    except SeqattnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TrainingStopped as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def cmd_check(args) -> int:
    from seqattn import recipe as recipes

    r = recipes.load(args.recipe, args.overrides)
    task = r.task.build()
    model = task.build_model(r.model)
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"recipe: {args.recipe}")
    print(f"task: {r.task.name}  model: {r.model.name}")
    for key, spec in r.model.kwargs.items():
        if hasattr(spec, "name"):
            print(f"  {key}: {spec.name}")
    print(f"parameters: {n}")
    return 0


def cmd_run(args) -> int:
    from seqattn import recipe as recipes

    r = recipes.load(args.recipe, args.overrides)
    from seqattn.train import Trainer  # heavy imports only once the recipe is known to be good

    run_dir = Path(args.output) if args.output else Path("runs") / Path(args.recipe).stem
    trainer = Trainer(r, run_dir, resume=args.resume)
    out = trainer.fit()
    if trainer.is_main:
        for split, metrics in out["results"].items():
            shown = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float)) and k != "ppl"]
            shown.sort(key=lambda kv: kv[0] == "loss")  # task metrics first, the loss last
            print(f"{split}: " + "  ".join(f"{k} {v:.2f}" for k, v in shown))
            if "signature" in metrics:
                print(f"{split}: sacreBLEU signature {metrics['signature']}")
            for src, hyp, ref in out["samples"].get(split, []):
                print(f"  source:    {src}\n  output:    {hyp}\n  reference: {ref}")
        print(f"run directory: {run_dir}  (weights: {out['model']})")
    return 0


def cmd_plugins(args) -> int:
    from seqattn.plugins import default_manager

    manager = default_manager()
    manager.report_failures()
    rows = [{"kind": e.kind, "name": e.name, "distribution": e.distribution, "plugin": e.plugin, "module": e.module}
            for e in manager.registry.entries()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    widths = [max(len(r[k]) for r in rows + [{k: k for k in rows[0]}]) for k in ("kind", "name", "distribution")]
    print(f"{'kind':<{widths[0]}}  {'name':<{widths[1]}}  {'distribution':<{widths[2]}}  module")
    for r in rows:
        print(f"{r['kind']:<{widths[0]}}  {r['name']:<{widths[1]}}  {r['distribution']:<{widths[2]}}  {r['module']}")
    return 0


def cmd_translate(args) -> int:
    from seqattn.translate import load_run

    overrides = list(args.overrides) + ([f"search.beam={args.beam}"] if args.beam else [])
    if args.n_best:
        overrides.append(f"search.n_best={args.n_best}")
    translator = load_run(Path(args.run_dir), overrides)
    lines = [line.rstrip("\n") for line in sys.stdin]
    outputs = translator.translate(lines)
    for nbest in outputs:
        print("\t".join(nbest) if args.n_best else nbest[0])
    if args.plot_attention:
        from seqattn.plot import plot_alignment

        alignments = translator.align(lines, [n[0] for n in outputs])
        for i, (line, alignment) in enumerate(zip(lines, alignments), start=1):
            plot_alignment(alignment, Path(args.plot_attention) / f"{i:04d}.png", title=line[:80])
    return 0


if __name__ == "__main__":
    sys.exit(main())
