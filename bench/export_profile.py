"""Where `export` spends time and memory: wall time and peak RSS per graph and stage (tracing,
graph passes, Sentis check, parity; saving is inside "graph passes"), sampled from
/proc/self/status every 0.1 s in a thread, plus the process peak (getrusage).

    flock /tmp/sentis_heavy.lock /usr/bin/time -v python bench/export_profile.py \
        --model-dir /tmp/perf-full-model --out /tmp/perf-bundle all

Prints a table (markdown) and the same as JSON with --json FILE (FILE + "l": one JSON line per
finished stage, written as the export runs).
"""
from __future__ import annotations

import argparse
import json
import resource
import threading
import time


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class StageProfile:
    """Export progress sink: records (component, graph, stage) -> seconds, peak RSS in that stage."""

    def __init__(self, period: float = 0.1, log=None):
        self.log = log  # a file: each finished row as a JSON line, as it happens
        self.rows: list[dict] = []
        self.cur: dict | None = None
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.t_start = time.perf_counter()
        self.thread = threading.Thread(target=self._sample, args=(period,), daemon=True)
        self.thread.start()

    def _sample(self, period):
        while not self.stop.wait(period):
            r = rss_bytes()
            with self.lock:
                if self.cur is not None:
                    self.cur["peak_rss"] = max(self.cur["peak_rss"], r)

    def _open(self, comp, graph, stage):
        with self.lock:
            now = time.perf_counter()
            if self.cur is not None:
                self.cur["seconds"] = now - self.cur.pop("_t0")
                self.rows.append(self.cur)
                if self.log:
                    print(json.dumps(self.cur), file=self.log, flush=True)
            self.cur = None if stage is None else {"component": comp, "graph": graph, "stage": stage,
                                                   "peak_rss": rss_bytes(), "_t0": now}

    # progress interface of exporter.export.export_components
    def component_start(self, comp, graphs):
        self._open(comp, "-", "build (load weights, modules)")

    def stage(self, comp, graph, stage):
        self._open(comp, graph, stage)

    def graph_done(self, comp, graph, result):
        self._open(comp, graph, "between graphs")

    def component_done(self, comp):
        self._open(comp, "-", "files, next component")

    def close(self):
        self._open(None, None, None)
        self.stop.set()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("components", nargs="+")
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--flow-len", type=int, action="append", default=[])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    import torch

    from exporter.export import export_components
    from exporter.families import family_of
    from exporter.modeldir import ModelDir
    from exporter.spec import ExportOptions

    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    md = ModelDir.open(a.model_dir)
    comps = family_of(md).available_components() if a.components == ["all"] else a.components
    prof = StageProfile(log=open(a.json + "l", "w") if a.json else None)
    export_components(md, a.out, comps, ExportOptions(threads=a.threads, flow_lens=tuple(a.flow_len)),
                      overwrite=True, progress=prof)
    prof.close()
    total = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"components {' '.join(comps)}; total {total:.1f} s; process peak RSS {peak / 1e9:.2f} GB\n")
    print("| component | graph | stage | s | peak RSS (GB) |\n|---|---|---|---|---|")
    for r in prof.rows:
        if r["seconds"] >= 0.5 or r["peak_rss"] >= 0.9 * peak:
            print(f"| {r['component']} | {r['graph']} | {r['stage']} | {r['seconds']:.1f} | {r['peak_rss'] / 1e9:.2f} |")
    by_stage: dict[str, float] = {}
    for r in prof.rows:
        by_stage[r["stage"]] = by_stage.get(r["stage"], 0.0) + r["seconds"]
    print("\nby stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(by_stage.items(), key=lambda kv: -kv[1])))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"components": comps, "total_s": total, "peak_rss": peak, "rows": prof.rows}, f, indent=1)


if __name__ == "__main__":
    main()
