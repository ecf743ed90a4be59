#!/usr/bin/env python3
"""Destination speed beside the curl floor (issue #16, goal 5).

Runs against the peers' fast server (../shared/bench/peers/fastserver.py
serve DB --page-size 1000), which must already be serving a db whose only
large collection is `posts`:

    python3 bench/destinations.py --port PORT --bin target/release/connector-run \
        [--postgres postgres://…] [--repeat 3] [--records 200000]

Each row is the median wall time of --repeat runs (process start to exit,
/usr/bin/time -v), records/s, ÷ the curl floor, peak RSS and CPU. The floor
is one `curl --compressed -K` process fetching every page, keep-alive, bodies
to /dev/null. connector-run reads `connectors/jsonplaceholder.yaml` with
`page_size=1000`; each destination starts empty (a fresh folder, a dropped
schema).
"""
import argparse, os, re, shutil, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, env=None):
    out = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    err = out.stderr
    def field(name):
        return re.search(re.escape(name) + r":\s*(.+)", err).group(1).strip()
    wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    parts = [float(p) for p in wall.split(":")]
    secs = parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) > 2 else 0)
    cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
    rss = int(field("Maximum resident set size (kbytes)")) / 1024
    return secs, cpu, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--postgres")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--records", type=int, default=200000)
    ap.add_argument("--page-size", type=int, default=1000)
    a = ap.parse_args()
    base = f"http://127.0.0.1:{a.port}"
    work = tempfile.mkdtemp(prefix="dest-bench-")
    pages = a.records // a.page_size + 1
    cfg = os.path.join(work, "curl.cfg")
    with open(cfg, "w") as f:
        for i in range(pages):
            f.write(f'url = "{base}/posts?_start={i * a.page_size}&_limit={a.page_size}"\noutput = "/dev/null"\n')
    rows = []

    def run(label, make_cmd, reset):
        results = []
        for _ in range(a.repeat):
            reset()
            results.append(timed(make_cmd()))
        wall = statistics.median(r[0] for r in results)
        cpu = statistics.median(r[1] for r in results)
        rss = max(r[2] for r in results)
        rows.append((label, wall, cpu, rss, [r[0] for r in results]))
        print(f"{label}: {wall:.3f} s", file=sys.stderr)

    nothing = lambda: None
    run("curl floor", lambda: ["curl", "-s", "--compressed", "-K", cfg], nothing)
    spec = os.path.join(ROOT, "connectors", "jsonplaceholder.yaml")
    def cr(dest):
        return [a.bin, "-q", "sync", spec, "posts", "--set", f"base_url={base}",
                "--set", f"page_size={a.page_size}", "--dest", dest]
    out = os.path.join(work, "out")
    def fresh():
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
    run("connector-run → jsonl", lambda: cr(f"jsonl:{out}"), fresh)
    run("connector-run → sqlite", lambda: cr(f"sqlite:{out}/db.sqlite"), fresh)
    run("connector-run → parquet", lambda: cr(f"parquet:{out}"), fresh)
    if a.postgres:
        def drop():
            subprocess.run(["psql", a.postgres, "-q", "-c",
                            "DROP SCHEMA IF EXISTS jsonplaceholder CASCADE; DROP TABLE IF EXISTS posts, _connector_state, _connector_streams CASCADE"],
                           check=False, capture_output=True)
        run("connector-run → postgres (COPY)", lambda: cr(a.postgres), drop)
    floor = rows[0][1]
    print(f"\n{a.records:,} posts, page size {a.page_size}, median of {a.repeat}\n")
    print("| run | wall s | records/s | ÷ curl floor | CPU s | peak RSS MB | wall s of each run |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for label, wall, cpu, rss, walls in rows:
        rate = a.records / wall
        print(f"| {label} | {wall:.3f} | {rate:,.0f} | {floor / wall:.2f} | {cpu:.2f} | {rss:.1f} | {', '.join(f'{w:.3f}' for w in walls)} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
