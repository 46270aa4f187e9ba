"""A model of data-parallel scaling of the full network past this machine (cnnlite.distributed), from a measured
per-sample compute time: per step, compute on B/N rows per node, then the exchange cnnlite does (the reduction-shard
partials by an ordered reduce-scatter, the summed slices by an allgather, the outputs by an allgather), on links of
10 and 100 Gb/s, with no overlap of compute and communication. A ring allreduce of the summed gradient (Horovod's,
not bitwise independent of N) is printed next to it for comparison.

    python benchmarks/scaling_model.py --sample-us 140 --out benchmarks/results/DATE/scaling_model.json

--sample-us: the full network's training time per sample on one node (1 process x 2 threads: the measured epoch
divided by 60000). Assumptions (printed): P = 229,514 float32 parameters; shards = min(gradient_shards, B // 64)
with gradient_shards set to at least N, so a node holds B // N rows and at least one shard; per message latency
30 us (10 Gb/s TCP) or 5 us (100 Gb/s RDMA); each rank sends and receives in parallel at the link rate.
"""
import argparse
import json

PARAMS = 229_514
OUTPUTS = 10
MIN_SHARD_ROWS = 64
LINKS = {"10Gb/s": (10e9 / 8, 30e-6), "100Gb/s": (100e9 / 8, 5e-6)}


def step_time(nodes, batch, sample_s, link, shards_setting=None):
    """(compute s, communication s, bytes sent per node, shards) of one step, or None when N nodes cannot each
    hold a reduction shard of this batch."""
    bandwidth, latency = LINKS[link]
    shards = min(shards_setting or max(nodes, 12), batch // MIN_SHARD_ROWS)
    if shards < nodes:
        return None
    compute = sample_s * batch / nodes
    if nodes == 1:
        return compute, 0.0, 0, shards
    frac = (nodes - 1) / nodes
    partials = shards / nodes * PARAMS * 4 * frac      # reduce-scatter: my shards' partials of the others' slices
    slices = PARAMS * 4 * frac                          # allgather of the summed slices
    outputs = batch * OUTPUTS * 4 * frac                # allgather of the last layer's outputs (forward)
    sent = partials + slices + outputs
    comm = sent / bandwidth + 3 * (nodes - 1) * latency
    return compute, comm, sent, shards


def ring_allreduce(nodes, batch, sample_s, link):
    bandwidth, latency = LINKS[link]
    compute = sample_s * batch / nodes
    if nodes == 1:
        return compute, 0.0
    return compute, 2 * PARAMS * 4 * (nodes - 1) / nodes / bandwidth + 2 * (nodes - 1) * latency


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-us", type=float, required=True)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    sample_s = args.sample_us * 1e-6
    rows, below_90 = [], {}
    for link in LINKS:
        for batch in (1000, 4096, 16384, 65536):
            for nodes in (1, 2, 4, 8, 16, 32, 64):
                t = step_time(nodes, batch, sample_s, link)
                if t is None:
                    rows.append({"link": link, "batch": batch, "nodes": nodes, "possible": False})
                    continue
                compute, comm, sent, shards = t
                eff = compute / (compute + comm)
                rc, rcomm = ring_allreduce(nodes, batch, sample_s, link)
                rows.append({"link": link, "batch": batch, "nodes": nodes, "possible": True, "shards": shards,
                             "compute_ms": compute * 1e3, "comm_ms": comm * 1e3, "MB_sent_per_node": sent / 1e6,
                             "efficiency": eff, "ring_allreduce_efficiency": rc / (rc + rcomm)})
                if eff < 0.9 and (link, batch) not in below_90:
                    below_90[(link, batch)] = nodes
    print(f"{'link':8s} {'batch':>6s} {'nodes':>5s} {'shards':>6s} {'compute ms':>10s} {'comm ms':>8s} "
          f"{'MB/node':>8s} {'eff':>6s} {'ring eff':>8s}")
    for r in rows:
        if not r["possible"]:
            print(f"{r['link']:8s} {r['batch']:6d} {r['nodes']:5d}  fewer than 64 rows per node: refused")
            continue
        print(f"{r['link']:8s} {r['batch']:6d} {r['nodes']:5d} {r['shards']:6d} {r['compute_ms']:10.2f} "
              f"{r['comm_ms']:8.2f} {r['MB_sent_per_node']:8.2f} {r['efficiency']:6.1%} "
              f"{r['ring_allreduce_efficiency']:8.1%}")
    print("first node count below 90 % efficiency:",
          {f"{k[0]} batch {k[1]}": v for k, v in below_90.items()} or "none up to 64")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"sample_us": args.sample_us, "params": PARAMS, "links": LINKS, "rows": rows,
                       "first_below_90": {f"{k[0]} batch {k[1]}": v for k, v in below_90.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
