#!/usr/bin/python3
"""Reference values for tests/core/reid/centroids_test.cpp (CentroidReference.*) and
tests/apps/cli_test.cpp (Cli.EvalFeaturesCentroidsMatchesTheReference).

A NumPy re-implementation of centroid retrieval as centroids-reid evaluates it
(github.com/mikwieczorek/centroids-reid, MODEL.USE_CENTROIDS with KEEP_CAMID_CENTROIDS = True,
TEST.FEAT_NORM = True, SOLVER.DISTANCE_FUNC = "euclidean"), written from reading its code:
  - junk (pid -1) is dropped on both sides (datasets/market1501.py, _process_dir);
  - for each gallery pid (ascending) and each camera in which that pid has queries (ascending),
    one centroid = mean of the pid's raw gallery features from the other cameras; none if there
    are no such images; a set of source cameras is used once per pid
    (modelling/bases.py, validation_create_centroids, respect_camids=True);
  - queries and centroids are L2-normalized, x / max(|x|, 1e-12) (utils/reid_metric.py,
    R1_mAP.compute); distance |q|^2 + |c|^2 - 2 q.c (get_euclidean);
  - per query: the centroids of its pid whose source cameras contain its camera are removed,
    matches are the other centroids of its pid, a query without a match is skipped; AP, CMC as
    top-k hit rates (utils/eval_reid.py, eval_func and top_k_retrieval).
Deliberate differences from the published code, the same as in core/reid/centroids.h:
  - gallery cameras are each image's own camera (validation_create_centroids reads camids[inds]
    with gallery-relative indices into the query+gallery array; centroids-reid issues #21, #41);
  - the argsort is stable (ties ranked in centroid order); numpy's default is not stable;
  - mINP (num matches / position of the last match) is added; the reference does not report it.
The float arithmetic (sums, norms, means, dot products) is written as plain sequential Python
float loops, in the order core/reid/centroids.cpp uses, so that both sides produce the same bits
and exact ties (duplicated, quantized features) are ties on both sides. NumPy does the ranking.

The case comes from the 64-bit LCG of eval_market1501_reference.py:
  state <- state * 6364136223846793005 + 1442695040888963407 (mod 2^64); output state >> 33.

Run:  /usr/bin/python3 tests/reference/eval_centroids_reference.py
"""
import math

import numpy as np

from eval_market1501_reference import Lcg  # the same LCG (this script's folder is on sys.path)

JUNK = -1


def make_case(seed=20250301, num_q=30, num_g=60, num_cams=4, num_ids=12, dim=4, palette=3):
    """Gallery pids: 1..num_ids, distractors (0) and junk (-1); queries use pids 1..num_ids-2
    plus one absent from the gallery, so pids num_ids-1 and num_ids are gallery-only. Pid
    num_ids-2 is seen by camera 0 only (gallery and queries): it gets no centroid. Every feature
    is one of `palette` integer vectors in {-1, 0, 1}^dim, so centroids and distances tie."""
    rng = Lcg(seed)
    colors = [[float(rng.below(3)) - 1.0 for _ in range(dim)] for _ in range(palette)]
    one_camera = num_ids - 2
    g_pids, g_camids, g_feats = [], [], []
    for _ in range(num_g):
        r = rng.below(num_ids + 3)
        pid = JUNK if r == 0 else (0 if r > num_ids else r)
        cam = rng.below(num_cams)
        g_pids.append(pid)
        g_camids.append(0 if pid == one_camera else cam)
        g_feats.append(list(colors[rng.below(palette)]))
    q_pids, q_camids, q_feats = [], [], []
    for _ in range(num_q):
        r = rng.below(num_ids)  # 0..num_ids-1
        if r == 0:
            pid = JUNK if rng.below(2) == 0 else num_ids + 5  # junk, or not in the gallery
        else:
            pid = min(r, one_camera)
        cam = rng.below(num_cams)
        q_pids.append(pid)
        q_camids.append(0 if pid == one_camera else cam)
        q_feats.append(list(colors[rng.below(palette)]))
    return q_feats, q_pids, q_camids, g_feats, g_pids, g_camids


def dot(a, b):
    s = 0.0
    for x, y in zip(a, b):
        s += x * y
    return s


def normalize(v):
    denom = max(math.sqrt(dot(v, v)), 1e-12)
    return [x / denom for x in v]


def build_centroids(g_feats, g_pids, g_camids, q_pids, q_camids):
    rows_of = {}
    for i, pid in enumerate(g_pids):
        if pid != JUNK:
            rows_of.setdefault(pid, []).append(i)
    cams_of = {}
    for pid, cam in zip(q_pids, q_camids):
        if pid != JUNK:
            cams_of.setdefault(pid, set()).add(cam)
    feats, pids, cameras = [], [], []
    for pid in sorted(rows_of):
        built = set()
        for cam in sorted(cams_of.get(pid, ())):
            members = [r for r in rows_of[pid] if g_camids[r] != cam]
            if not members:
                continue
            sources = tuple(sorted({g_camids[r] for r in members}))
            if sources in built:
                continue
            built.add(sources)
            mean = [0.0] * len(g_feats[0])
            for r in members:
                for k, x in enumerate(g_feats[r]):
                    mean[k] += x
            feats.append([m / len(members) for m in mean])
            pids.append(pid)
            cameras.append(sources)
    return feats, pids, cameras


def evaluate(q_feats, q_pids, q_camids, g_feats, g_pids, g_camids, max_rank=50,
             reverse_ties=False):
    keep_q = [i for i, pid in enumerate(q_pids) if pid != JUNK]
    c_feats, c_pids, c_cams = build_centroids(g_feats, g_pids, g_camids, q_pids, q_camids)
    c_feats = [normalize(c) for c in c_feats]
    qs = [normalize(q_feats[i]) for i in keep_q]
    cc = [dot(c, c) for c in c_feats]
    dist = np.empty((len(qs), len(c_feats)), dtype=np.float64)
    for i, q in enumerate(qs):
        qq = dot(q, q)
        for j, c in enumerate(c_feats):
            dist[i, j] = (qq + cc[j]) - 2.0 * dot(q, c)
    num_c = len(c_feats)
    max_rank = min(max_rank, num_c)
    c_pids_arr = np.asarray(c_pids)
    aps, inps, hits, removed_total, multi_match = [], [], [], 0, 0
    for i, qi in enumerate(keep_q):
        if reverse_ties:  # only to show that the figures depend on the tie rule
            order = np.lexsort((-np.arange(num_c), dist[i]))
        else:
            order = np.argsort(dist[i], kind="stable")
        remove = np.array([c_pids[j] == q_pids[qi] and q_camids[qi] in c_cams[j] for j in order],
                          dtype=bool)
        removed_total += int(remove.sum())
        raw = (c_pids_arr[order] == q_pids[qi]).astype(np.int64)[~remove]
        if not raw.any():
            continue  # no match left: the query does not count
        cum = raw.cumsum()
        multi_match += int(raw.sum() > 1)
        aps.append(float(((cum / (np.arange(len(raw)) + 1.0)) * raw).sum() / raw.sum()))
        last = int(np.nonzero(raw)[0][-1])
        inps.append(float(cum[last]) / (last + 1.0))
        hits.append([bool(raw[:k].any()) for k in range(1, max_rank + 1)])
    hits = np.asarray(hits, dtype=np.float64)
    cmc = hits.mean(axis=0)
    ties = sum(len(row) - len(np.unique(row)) for row in dist)
    return {
        "total_queries": len(keep_q),
        "valid_queries": len(aps),
        "mAP": float(np.mean(aps)),
        "mINP": float(np.mean(inps)),
        "cmc": [float(x) for x in cmc],
        "centroids": num_c,
        "centroid_pids": c_pids,
        "centroid_cameras": c_cams,
        "tied_distances": ties,
        "removed_same_camera_centroids": removed_total,
        "queries_with_several_matches": multi_match,
    }


def main():
    q_feats, q_pids, q_camids, g_feats, g_pids, g_camids = make_case()
    r = evaluate(q_feats, q_pids, q_camids, g_feats, g_pids, g_camids)
    gallery_only = sorted(set(g_pids) - set(q_pids) - {0, JUNK})
    print(f"numpy {np.__version__}")
    print(f"gallery: {len(g_pids)} images, distractors {g_pids.count(0)}, junk {g_pids.count(JUNK)},"
          f" gallery-only pids {gallery_only}")
    print(f"queries: {len(q_pids)}, junk {q_pids.count(JUNK)}")
    print(f"centroids {r['centroids']}: pids {r['centroid_pids']}")
    print(f"centroid cameras {r['centroid_cameras']}")
    print(f"tied distances (per-row duplicates) {r['tied_distances']}, "
          f"removed same-camera centroids {r['removed_same_camera_centroids']}, "
          f"queries with several matches {r['queries_with_several_matches']}")
    print(f"valid_queries {r['valid_queries']} of {r['total_queries']}")
    print(f"mAP  {r['mAP']!r}")
    print(f"mINP {r['mINP']!r}")
    print("cmc  [" + ", ".join(repr(x) for x in r["cmc"]) + "]")
    reversed_ties = evaluate(q_feats, q_pids, q_camids, g_feats, g_pids, g_camids,
                             reverse_ties=True)
    print(f"(ties ranked in reverse centroid order instead: mAP {reversed_ties['mAP']!r})")
    rng = Lcg(20250301)
    print("lcg", [rng.next() for _ in range(3)])


if __name__ == "__main__":
    main()
