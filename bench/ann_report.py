"""The figures bench/ann_libraries.py measures for one library and setting, and their Markdown report."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.ann_adapters import BUILD_THREADS, DIM, EF_MEMORY, OPEN_MODES, QUERIES, M


@dataclass
class Result:
    key: str
    lib: str
    storage: str
    ef_construction: int
    build_s: float
    build_cpu_s: float
    searches: dict = field(default_factory=dict)  # ef -> (recall, p50, p95, p50 of CPU time)
    disk_bytes: int = 0
    opens: dict = field(default_factory=dict)  # mode -> child report (with recall)
    update: dict | None = None


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def report(results: list[Result], rows: int, notes: list[str]) -> str:
    lines = [f"### HNSW libraries, {rows:,} vectors x {DIM} (cosine), M={M}, {BUILD_THREADS} build threads", ""]
    lines += notes + [""]
    lines += [
        (
            "| library | storage | efC | build s | build vec/s | build CPU s | efS | recall@10 | p50 ms | p95 ms "
            "| p50 CPU ms |"
        ),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for ef, (rec, p50, p95, cpu50) in r.searches.items():
            lines.append(
                f"| {r.lib} | {r.storage} | {r.ef_construction} | {r.build_s:.1f} | {rows / r.build_s:,.0f} | "
                f"{r.build_cpu_s:.1f} | {ef} | {rec:.3f} | {p50:.3f} | {p95:.3f} | {cpu50:.3f} |"
            )
    lines += [
        "",
        (
            "build CPU s: the process's user+system CPU time during the build (both threads together), less "
            "sensitive than wall-clock time to other processes on the machine; p50 CPU ms: the same for one query."
        ),
        "",
        (
            f"Saved index (efC {max(r.ef_construction for r in results)}), opened by a fresh process that answers the {QUERIES} queries (efS {EF_MEMORY}). "
            "RSS is the process's VmRSS after the queries minus before opening (MiB); anon/file its parts; "
            "python+numpy+library before opening shown once per row."
        ),
        "",
        "| library | storage | efC | disk MiB | open mode | open s | RSS added | anon | file | base RSS | recall@10 |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for mode, label in OPEN_MODES[r.lib] if r.opens else ():
            o = r.opens.get(mode, {})
            if "error" in o:
                lines.append(
                    f"| {r.lib} | {r.storage} | {r.ef_construction} | {r.disk_bytes / 2**20:.0f} | "
                    f"{label} | — | failed: {o['error']} | | | | |"
                )
                continue
            b, a = o["before"], o["after"]
            lines.append(
                f"| {r.lib} | {r.storage} | {r.ef_construction} | {r.disk_bytes / 2**20:.0f} | {label} | "
                f"{o['open_s']:.2f} | {mib(a['VmRSS'] - b['VmRSS'])} | {mib(a['RssAnon'] - b['RssAnon'])} | "
                f"{mib(a['RssFile'] - b['RssFile'])} | {mib(b['VmRSS'])} | {o['recall']:.3f} |"
            )
    updates = [r for r in results if r.update]
    if updates:
        change = max(1, rows // 100)
        lines += [
            "",
            (
                f"Updates of a saved index (efC {updates[0].ef_construction}): load writable, "
                f"remove {change:,} keys (1%), "
                f"add {change:,} new vectors, save; recall@10 at efS {EF_MEMORY} against the updated set."
            ),
            "",
            (
                "| library | storage | remove by key | remove s | add s | add vec/s | save s | "
                "recall before | recall after |"
            ),
            "|---|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in updates:
            u = r.update
            lines.append(
                f"| {r.lib} | {r.storage} | {u['remove']} | {u['remove_s']:.3f} | {u['add_s']:.2f} | "
                f"{u['add_rate']:,.0f} | {u['save_s']:.2f} | {u['before_recall']:.3f} | "
                f"{u['after_recall']:.3f} |"
            )
    return "\n".join(lines)


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("usearch", "faiss-cpu", "hnswlib", "numpy"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)
