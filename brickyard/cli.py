"""`brickyard`: one command for the whole build, one subcommand per stage, and the catalog.

    brickyard run       --config configs/demo.yaml    every stage that exists, in order
    brickyard ingest    --config ...                  sources -> bronze.documents
    brickyard curate    --config ...                  bronze.documents -> silver.documents
    brickyard decontaminate --config ...              documents holding evaluation items -> silver.contamination, then curate
    brickyard quality   train --config ...            fastText quality classifier -> MLflow registry
    brickyard dedup     --config ...                  silver.documents -> gold.documents (exact + MinHash LSH)
    brickyard tokenize  --config ...                  gold.documents -> gold.tokens (cl100k_base ids)
    brickyard export    --config ... --curriculum SPEC gold.tokens -> MDS shards + manifest [--verify]
    brickyard train     --config configs/train/NAME.yaml  an export -> a trained MoE, checkpoints, an MLflow run
    brickyard train     --config ... --from-table gold.tokens --curriculum SPEC [--as-of V]  export, then train
    brickyard report    [--lakehouse DIR] [--as-of TABLE=V]  the notebooks, executed, as one HTML report
    brickyard catalog   ls | show TABLE | lineage TABLE | lineage --run MLFLOW_RUN_ID
    brickyard model     info [PRESET]                 model presets and their parameter counts
    brickyard model     plan PRESET --gpus N --gpu-memory 80GB  memory per device, and whether it fits
    brickyard setup                                   check Java, fetch and cache the Delta jars

Imports are lazy so that `--help` answers at once; Spark starts only for commands that need it.
Problems the user can fix are printed as one sentence (exit status 2), never as a JVM trace.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from .pipelines.stages.base import Stage
from .pipelines.stages.registry import register, stage_names


def _spark_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("lakehouse and Spark")
    g.add_argument("--config", default=os.environ.get("BRICKYARD_CONFIG"),
                   help="pipeline YAML (sources, thresholds, Spark settings); env BRICKYARD_CONFIG")
    g.add_argument("--lakehouse", help="lakehouse root folder (default ./lakehouse); env BRICKYARD_LAKEHOUSE")
    g.add_argument("--master", help="Spark master, e.g. local[4] or spark://host:7077 (default local[*])")
    g.add_argument("--remote", help="Spark Connect URL, e.g. sc://host:15002 (instead of --master)")
    g.add_argument("--engine", choices=["auto", "local", "server"], default=os.environ.get("BRICKYARD_ENGINE"),
                   help="auto: the lakehouse's `brickyard serve` server when it is up, else a local Spark driver "
                   "(default); server: the server only; local: a driver of its own; env BRICKYARD_ENGINE")
    g.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                   help="any Spark setting, repeatable (e.g. spark.driver.memory=8g)")
    g.add_argument("--no-progress", action="store_true", help="hide Spark's console progress bar where the config turns it on (spark.progress)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brickyard",
        description="Curate text and code with Spark into a governed Delta Lake catalog, export "
        "curriculum-weighted MDS shards, and train a DBRX-style MoE on them.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", help="run every stage, in order, then print the catalog",
                       description=f"Run every stage that exists, in order ({', '.join(stage_names())}), "
                       "in one Spark session, then print the catalog.")
    _spark_options(p)
    p.add_argument("--source", action="append", help="ingest only this source (repeatable)")
    p.add_argument("--until", choices=stage_names(), help="stop after this stage (e.g. --until export: the data build only)")

    p = sub.add_parser("ingest", help="read the declared sources into bronze.documents",
                       description="Read the config's sources into bronze.documents; what cannot be "
                       "read goes to bronze.quarantine with its reason. Only new or changed files are read.")
    _spark_options(p)
    p.add_argument("--source", action="append", help="ingest only this source (repeatable)")

    p = sub.add_parser("curate", help="bronze.documents -> silver.documents: normalize, identify language, filter, redact",
                       description="Curate new or changed bronze documents into silver.documents: every "
                       "document is kept with its signals, a keep flag and the rule that rejected it; "
                       "ops.filter_stats counts documents and bytes per rule and domain.")
    _spark_options(p)

    p = sub.add_parser("decontaminate", help="find documents that contain evaluation items; curate then rejects them",
                       description="Check the curated documents not checked yet (or changed) against the evaluation "
                       "sets declared under decontaminate.eval_sets (word n-grams, verified against the text) into "
                       "silver.contamination, then curate again to reject what was found (rule contaminated).")
    _spark_options(p)

    p = sub.add_parser("dedup", help="silver.documents -> gold.documents: exact and near-duplicate clusters",
                       description="Cluster exact (same text) and near duplicates (MinHash LSH, Jaccard threshold) "
                       "among the kept silver documents not deduplicated yet, against everything already in gold; "
                       "one keeper per cluster goes to gold.documents, every document's cluster to silver.duplicates.")
    _spark_options(p)

    p = sub.add_parser("tokenize", help="gold.documents -> gold.tokens: token ids per document",
                       description="Encode the gold documents not tokenized yet (or changed) with the configured "
                       "tiktoken encoding (cl100k_base by default), each followed by end-of-text, into gold.tokens; "
                       "token counts per domain and quality tier go to the run's lineage.")
    _spark_options(p)

    p = sub.add_parser("export", help="gold.tokens -> MDS shards and a curriculum manifest",
                       description="Pack the curriculum's streams of gold.tokens into fixed-length samples, write them "
                       "as MosaicML Streaming (MDS) shards with a manifest (spec, table versions, phases, checksums), "
                       "and record the export in ops.exports. The same versions and spec give the same shards.")
    _spark_options(p)
    p.add_argument("--curriculum", help="curriculum YAML (default: export.curriculum in the pipeline config)")
    p.add_argument("--out", help="export folder (default: <lakehouse>/exports/<curriculum>-v<version>-<hash>)")
    p.add_argument("--as-of", type=int, metavar="VERSION", help="read gold.tokens at this Delta version (reproduce an export)")
    p.add_argument("--force", action="store_true", help="write again even if the folder holds this export")
    p.add_argument("--verify", nargs="?", const=True, default=False, metavar="EXPORT_DIR",
                   help="read the export back through StreamingDataset and check it against its manifest; "
                   "with a folder, verify that export only (no Spark)")

    p = sub.add_parser("train", help="train the MoE on an export (or export from gold.tokens first)",
                       description="Train the model a training config describes on an export, in this process "
                       "(one CPU or GPU; under torchrun use `python -m brickyard.training.train`, the same code). "
                       "Checkpoints resume exactly; the run is logged in MLflow with its export and table versions.")
    from .training.config import add_arguments

    add_arguments(p)
    g = p.add_argument_group("training from curated tables (exports first, with Spark)")
    g.add_argument("--from-table", choices=["gold.tokens"], help="export this table with --curriculum, then train on it")
    g.add_argument("--curriculum", help="curriculum YAML for --from-table")
    g.add_argument("--as-of", type=int, metavar="VERSION", help="with --from-table: gold.tokens at this Delta version")
    g.add_argument("--pipeline-config", default=os.environ.get("BRICKYARD_CONFIG"),
                   help="pipeline YAML for the export's Spark settings (env BRICKYARD_CONFIG)")

    p = sub.add_parser("quality", help="the fastText quality classifier",
                       description="Train the quality classifier from catalog tables and register it.")
    qsub = p.add_subparsers(dest="quality_command", metavar="ACTION", required=True)
    q = qsub.add_parser("train", help="train from the config's reference selection and register a new version",
                        description="Train a fastText classifier: positives from quality.positives (domains, "
                        "a table or view, a condition), negatives a random sample of other curated documents or "
                        "the rejected ones. The model is registered in the lakehouse's MLflow registry with its "
                        "lineage; `brickyard curate` then scores silver with it. Same data and settings: no-op.")
    q.add_argument("--force", action="store_true", help="train a new version even if nothing changed")
    _spark_options(q)

    p = sub.add_parser("catalog", help="look at the governed catalog",
                       description="List tables, show one, or trace its lineage.")
    csub = p.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    c = csub.add_parser("ls", help="tables with layer, rows, version, owner and PII status",
                        description="List the catalog's tables with layer, rows, version, owner and PII status.")
    _spark_options(c)
    c = csub.add_parser("show", help="schema, properties, constraints and recent history of a table",
                        description="Show a table's columns with comments, governance properties, "
                        "constraints and recent Delta history.")
    c.add_argument("table", help="schema.table, e.g. bronze.documents")
    c.add_argument("--history", type=int, default=10, help="history entries to show (default 10)")
    _spark_options(c)
    c = csub.add_parser("lineage", help="the runs and tables upstream of a table",
                        description="Show the runs that wrote a table (newest first), what each read, "
                        "and the runs upstream of those tables.")
    c.add_argument("table", nargs="?", help="schema.table, e.g. bronze.documents")
    c.add_argument("--run", metavar="MLFLOW_RUN_ID", help="start from a training run: its export, the tables it read, upstream")
    c.add_argument("--runs", type=int, default=5, help="most recent runs to show (default 5)")
    _spark_options(c)

    p = sub.add_parser("forget", help="delete documents from every layer; mark exports that hold them stale",
                       description="Delete the chosen documents from bronze, silver and gold (documents, quarantine, "
                       "signatures, duplicate clusters, tokens), mark every export built from a table version that "
                       "holds them stale in ops.exports, and record the run in ops.lineage. Clusters that lose a "
                       "member are dissolved and clustered again by the next dedup.")
    sel = p.add_mutually_exclusive_group(required=True)
    sel.add_argument("--source", help="every document (and quarantine row) of this source")
    sel.add_argument("--doc-id", action="append", metavar="ID", help="this document (repeat for more)")
    sel.add_argument("--where", metavar="SQL", help="the documents of bronze.documents this condition selects")
    p.add_argument("--vacuum", action="store_true", help="then rewrite the tables without them and remove the old "
                   "files (REORG ... PURGE, VACUUM RETAIN 0 HOURS): older table versions can no longer be read")
    _spark_options(p)

    p = sub.add_parser("report", help="run the data-quality notebooks headless and write one HTML report",
                       description="Execute the notebooks in notebooks/ (catalog, curation funnel, duplicates, "
                       "tokens and curriculum, training runs) against a lakehouse, without Spark, and write them "
                       "as one HTML page beside the executed notebooks, under <lakehouse>/reports/.")
    p.add_argument("--config", default=os.environ.get("BRICKYARD_CONFIG"),
                   help="pipeline YAML, for its lakehouse setting; env BRICKYARD_CONFIG")
    p.add_argument("--lakehouse", help="lakehouse root folder (default ./lakehouse); env BRICKYARD_LAKEHOUSE")
    p.add_argument("--as-of", action="append", metavar="TABLE=VERSION",
                   help="read a table at a Delta version, repeatable (e.g. gold.tokens=7)")
    p.add_argument("--export", metavar="EXPORT_ID", help="the export to show (default: the newest)")
    p.add_argument("--run", metavar="MLFLOW_RUN_ID", help="the training run to show (default: the newest)")
    p.add_argument("--out", help="folder for the report and the executed notebooks (default <lakehouse>/reports/<time>)")

    p = sub.add_parser("model", help="model presets and their sizes",
                       description="Show the model presets and their parameter counts.")
    msub = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    m = msub.add_parser("info", help="shape and parameter counts of a preset (or all)",
                        description="Print a preset's shape with its total and active parameters.")
    m.add_argument("preset", nargs="?", help="tiny, small, dbrx-moe-a, dbrx-moe-b, dbrx, tinyllama (default: all)")
    m = msub.add_parser("plan", help="memory per device of training a preset, and whether it fits",
                        description="Estimate parameters, gradients, optimizer state and activations per device.")
    from .training.plan import add_arguments as add_plan_arguments

    add_plan_arguments(m)

    p = sub.add_parser("serve", help="keep a warm Spark engine for the lakehouse (Spark Connect); other commands use it",
                       description="Start a local Spark Connect server for the lakehouse (Delta, its metastore, this "
                       "brickyard on the workers' path) and return; every other command then connects to it instead of "
                       "starting a driver of its own, and several can work on the lakehouse at once. It stops after "
                       "--idle-timeout without use.")
    _spark_options(p)
    p.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--idle-timeout", default="30m", help="stop after this long without a client or a run "
                   "(e.g. 45m, 2h; 0: never; default 30m)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--status", action="store_true", help="say whether the server is up, since when, and how idle")
    g.add_argument("--stop", action="store_true", help="stop the server")

    p = sub.add_parser("setup", help="check Java, fetch the Delta jars and build the JVM class archive",
                       description="Check that Java 17+ is present, resolve the Delta Lake jars "
                       "from Maven Central once into the cache, so later sessions start offline, and "
                       "build the JVM class archive that makes every later session start faster.")
    p.add_argument("--force", action="store_true", help="resolve the jars and build the archive again even if they are cached")
    return parser


def _settings(args):
    from .pipelines.config import load_config
    from .pipelines.errors import ConfigError

    cfg = load_config(args.config)
    if args.master:
        cfg.spark.master = args.master
    if args.remote or os.environ.get("SPARK_REMOTE"):
        cfg.spark.remote = args.remote or os.environ["SPARK_REMOTE"]
    if args.engine:
        cfg.spark.engine = args.engine
    for kv in args.conf:
        if "=" not in kv:
            raise ConfigError(f"--conf {kv!r}: expected KEY=VALUE")
        k, v = kv.split("=", 1)
        cfg.spark.conf[k.strip()] = v.strip()
    if args.no_progress:
        cfg.spark.progress = False
    return cfg


def _spark(args, cfg):
    from .pipelines.lake.session import get_spark, lakehouse_root

    root = lakehouse_root(args.lakehouse, cfg.lakehouse)
    return get_spark(root, cfg.spark), root


def cmd_run(args) -> int:
    from .pipelines.lake.catalog import render_ls
    from .pipelines.stages.base import StageContext
    from .pipelines.stages.registry import run_stages

    cfg = _settings(args)
    if not cfg.sources:
        from .pipelines.errors import ConfigError

        raise ConfigError("the config declares no sources; pass --config configs/demo.yaml or your own")
    spark, root = _spark(args, cfg)
    print(f"lakehouse: {root}")
    t0 = time.time()
    ctx = StageContext(spark, cfg, root, {"sources": args.source, "verify": True})
    run_stages(ctx, args.until)
    print(f"all stages done in {time.time() - t0:.1f}s\n")
    print(render_ls(root=root) if _on_this_disk(cfg, root) else render_ls(spark))
    if "report" in ctx.handoff:
        print(f"\nreport: {ctx.handoff['report']}")
    return 0


def _report(root, versions=None, export_id=None, run_id=None, out=None):
    from .report import build, check

    path, outcomes = build(root, versions, export_id, run_id, out_dir=out)
    check(outcomes, path)
    return path


def cmd_report(args) -> int:
    from .pipelines.config import load_config
    from .pipelines.lake.session import lakehouse_root
    from .report import parse_versions

    root = lakehouse_root(args.lakehouse, load_config(args.config).lakehouse)
    path = _report(root, parse_versions(args.as_of), args.export, args.run, args.out)
    print(f"report: {path}")
    return 0


def cmd_quality(args) -> int:
    from .pipelines.stages.quality import train

    cfg = _settings(args)
    spark, _ = _spark(args, cfg)
    r = train(spark, cfg, force=args.force)
    print(f"{r.detail['model'].uri}: {r.status}; `brickyard curate` scores silver with it")
    return 0


def _stage_command(module: str, function: str, **options):
    """A stage's own command: run it once and print its run id and outcome."""

    def command(args) -> int:
        import importlib

        job = getattr(importlib.import_module(module), function)
        cfg = _settings(args)
        spark, _ = _spark(args, cfg)
        r = job(spark, cfg, **{k: getattr(args, v) for k, v in options.items()})
        print(f"run {r.run_id}: {r.status}")
        return 0

    return command


cmd_ingest = _stage_command("brickyard.pipelines.stages.ingest", "ingest", only="source")
cmd_curate = _stage_command("brickyard.pipelines.stages.curate", "curate")
cmd_dedup = _stage_command("brickyard.pipelines.stages.dedup", "dedup")


def cmd_decontaminate(args) -> int:
    """The stage, then curate to apply what it found (as `brickyard run` does)."""
    from .pipelines.stages.curate import curate
    from .pipelines.stages.decontaminate import decontaminate

    cfg = _settings(args)
    spark, _ = _spark(args, cfg)
    r = decontaminate(spark, cfg)
    print(f"run {r.run_id}: {r.status}")
    if r.status == "succeeded":
        c = curate(spark, cfg)
        print(f"run {c.run_id}: {c.status} (curate applied it: {c.rows_rejected} documents rejected)")
    return 0
cmd_tokenize = _stage_command("brickyard.pipelines.stages.tokenize", "tokenize")


def _export(spark, cfg, curriculum, out=None, as_of=None, force=False):
    from .pipelines.curriculum import load_curriculum
    from .pipelines.stages.export import export

    spec = load_curriculum(curriculum)
    r = export(spark, cfg, spec, out=out, as_of=as_of, force=force)
    print(f"run {r.run_id}: {r.status}: {r.detail['path']}")
    return r.detail["path"]


def _export_and_verify(spark, cfg, curriculum, out=None, as_of=None, force=False, verify=True) -> int:
    path = _export(spark, cfg, curriculum, out, as_of, force)
    return _verify(path) if verify else 0


@register
class Train(Stage):
    """`brickyard run`'s training: the configured run on the export just made, resumed if a
    checkpoint of the same config is there, a no-op if it is already trained."""

    name = "train"
    recorded = False  # an MLflow run, linked to the export and its table versions

    def skip(self, ctx):
        if not ctx.cfg.train.config:
            return "no training configured (set train.config, and export.curriculum)"
        return None if "export" in ctx.handoff else "nothing exported to train on"

    def apply(self, ctx, run):
        from .training.config import load_train_config, use_lakehouse
        from .training.train import train

        use_lakehouse(ctx.lakehouse)
        tcfg = load_train_config(ctx.cfg.resolve(ctx.cfg.train.config))
        tcfg.data.export = str(ctx.handoff["export"])
        train(tcfg, resume="auto")


@register
class Report(Stage):
    """The notebooks run headless into one HTML page (no Spark: the catalog read by delta-rs)."""

    name = "report"
    recorded = False

    def apply(self, ctx, run):
        ctx.handoff["report"] = _report(ctx.lakehouse)


def cmd_train(args) -> int:
    from .pipelines.errors import ConfigError
    from .training.config import config_from_args
    from .training.train import train

    tcfg = config_from_args(args)
    if args.from_table:
        from .pipelines.config import load_config
        from .pipelines.lake.session import get_spark

        if not args.curriculum:
            raise ConfigError("--from-table needs --curriculum configs/curriculum/NAME.yaml")
        cfg = load_config(args.pipeline_config)
        root = tcfg.lakehouse_root()
        spark = get_spark(root, cfg.spark)
        try:
            path = _export(spark, cfg, args.curriculum, as_of=args.as_of)
        finally:
            spark.stop()
        tcfg.data.export = str(path)
    elif args.curriculum or args.as_of is not None:
        raise ConfigError("--curriculum and --as-of go with --from-table gold.tokens")
    result = train(tcfg, resume="yes" if args.resume else "no", fresh=args.fresh)
    return 0 if result.status in ("succeeded", "noop") else 1


def _verify(path) -> int:
    from .pipelines.manifest import verify

    problems = verify(path)
    for p in problems:
        print(f"verify: {p}", file=sys.stderr)
    print(f"verify: {path}: " + ("ok" if not problems else f"{len(problems)} problems"))
    return 1 if problems else 0


def cmd_export(args) -> int:
    from .pipelines.errors import ConfigError

    if isinstance(args.verify, str):
        return _verify(args.verify)
    cfg = _settings(args)
    curriculum = args.curriculum or (cfg.resolve(cfg.export.curriculum) if cfg.export.curriculum else None)
    if not curriculum:
        raise ConfigError("name a curriculum: --curriculum configs/curriculum/NAME.yaml, or export.curriculum in the config")
    spark, _ = _spark(args, cfg)
    return _export_and_verify(spark, cfg, curriculum, args.out, args.as_of, args.force, bool(args.verify))


def cmd_forget(args) -> int:
    from .pipelines.stages.forget import forget

    cfg = _settings(args)
    spark, _ = _spark(args, cfg)
    r = forget(spark, cfg, source=args.source, doc_ids=args.doc_id, where=args.where, vacuum=args.vacuum)
    print(f"run {r.run_id}: {r.status}")
    return 0


def _on_this_disk(cfg, root) -> bool:
    """Whether the lakehouse's tables are on this machine's disk, where its Delta logs can be read
    without Spark (not a Spark Connect server elsewhere, not a warehouse moved by --conf)."""
    return not cfg.spark.remote and "spark.sql.warehouse.dir" not in cfg.spark.conf and (root / "warehouse").is_dir()


def cmd_catalog(args) -> int:
    from .pipelines.lake import catalog
    from .pipelines.lake.session import lakehouse_root

    cfg = _settings(args)
    cfg.spark.progress = False  # small queries: a progress bar would only flicker
    root = lakehouse_root(args.lakehouse, cfg.lakehouse)
    if args.catalog_command == "ls" and _on_this_disk(cfg, root):
        print(catalog.render_ls(root=root))  # read from the Delta logs: no Spark to start
        return 0
    spark, root = _spark(args, cfg)
    if args.catalog_command == "ls":
        print(catalog.render_ls(spark))
    elif args.catalog_command == "show":
        print(catalog.render_show(spark, args.table, args.history))
    elif args.run:
        print(catalog.render_run_lineage(spark, root, args.run))
    elif args.table:
        print(catalog.render_lineage(spark, args.table, args.runs))
    else:
        from .pipelines.errors import ConfigError

        raise ConfigError("name a table (brickyard catalog lineage gold.tokens) or a training run (--run MLFLOW_RUN_ID)")
    return 0


def cmd_model(args) -> int:
    if args.model_command == "plan":
        from .training import plan

        return plan.run(args)
    from .model.presets import PRESETS, param_counts
    from .pipelines.lake.catalog import format_table

    names = [args.preset] if args.preset else list(PRESETS)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        from .pipelines.errors import BrickyardError

        raise BrickyardError(f"unknown model preset {unknown[0]!r}; presets: {', '.join(PRESETS)}")
    rows = []
    for n in names:
        c, pc = PRESETS[n], param_counts(PRESETS[n])
        rows.append([n, c.n_layers, c.d_model, f"{c.n_heads}/{c.n_kv_heads}", f"{c.top_k} of {c.n_experts}",
                     c.expert_ffn, c.vocab_size, f"{pc['total'] / 1e9:.3f}B", f"{pc['active'] / 1e9:.3f}B"])
    print(format_table(["preset", "layers", "d_model", "heads/kv", "experts", "expert_ffn", "vocab", "total", "active"], rows))
    return 0


def cmd_serve(args) -> int:
    from .pipelines.lake import server
    from .pipelines.lake.session import lakehouse_root

    cfg = _settings(args)
    root = lakehouse_root(args.lakehouse, cfg.lakehouse)
    if args.stop:
        state = server.stop(root)
        print(f"serve: stopped the server of {root} ({state['url']})" if state else f"serve: no server is running for {root}")
        return 0
    if args.status:
        st = server.status(root)
        if st is None:
            print(f"serve: no server is running for {root}")
            return 3
        idle = "never stops when idle" if not st["idle_s"] else f"stops after {st['idle_s'] / 60:.0f} min idle"
        print(f"serve: {root} at {st['url']} (pid {st['pid']}, master {st['settings']['master']}), up {st['uptime_s'] / 60:.1f} min, "
              f"{st['clients']} clients connected, last command {st['idle_s_now'] / 60:.1f} min ago; {idle}")
        return 0
    if cfg.spark.remote:
        from .pipelines.errors import ConfigError

        raise ConfigError("brickyard serve starts a local server; --remote (or SPARK_REMOTE) names one that runs elsewhere")
    before = server.server_state(root)
    t0 = time.time()
    state = server.start(root, cfg.spark, args.port, server.parse_duration(args.idle_timeout))
    how = "already running" if before else f"started in {time.time() - t0:.1f}s"
    print(f"serve: {root} at {state['url']} ({how}); commands on this lakehouse use it; `brickyard serve --stop` stops it")
    return 0


def cmd_setup(args) -> int:
    import subprocess

    from .pipelines.errors import BrickyardError
    from .pipelines.lake import jars
    from .pipelines.lake.session import check_java, java_version

    java = check_java()
    print(f"java: {java} (Java {java_version(java)})")
    cached = None if args.force else jars.cached_jars()
    if cached:
        print(f"delta jars: {len(cached)} cached in {jars.jar_dir()}")
    else:
        jars.resolve_delta_jars()
    from .pipelines.lake import classes

    archive = None if args.force else classes.jvm_options(jars.ensure_delta_jars(quiet=True))
    if archive:
        print(f"jvm class archive: {archive[0].split('=', 1)[1]}")
    elif classes.enabled():
        try:
            classes.build(force=args.force)
        except (BrickyardError, OSError, subprocess.TimeoutExpired) as e:  # sessions work without it
            print(f"jvm class archive: not built: {e}", file=sys.stderr)
    return 0


COMMANDS = {"report": cmd_report, "train": cmd_train, "run": cmd_run, "ingest": cmd_ingest, "curate": cmd_curate, "dedup": cmd_dedup, "decontaminate": cmd_decontaminate, "tokenize": cmd_tokenize, "export": cmd_export, "quality": cmd_quality, "catalog": cmd_catalog, "forget": cmd_forget, "model": cmd_model, "serve": cmd_serve, "setup": cmd_setup}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .pipelines.errors import BrickyardError
    from .progress import to_console

    to_console()

    try:
        return COMMANDS[args.command](args)
    except BrickyardError as e:
        print(f"brickyard: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("brickyard: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from .pipelines.errors import storage_failure

        sentence = storage_failure(e, f"brickyard {args.command}")
        if sentence is None:
            raise
        print(f"brickyard: error: {sentence}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
