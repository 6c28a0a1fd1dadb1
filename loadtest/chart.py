"""Draws the main figures of a loadtest/run as one image: throughput per path (median of the
three wrk rounds) and latency percentiles at a fixed rate (k6). Reads loadtest/out/.
Usage: python3 loadtest/chart.py [out-dir] [image]   (needs matplotlib)"""
import json
import re
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else "loadtest/out"
image = sys.argv[2] if len(sys.argv) > 2 else f"{out}/loadtest.png"


def rps(name):
    runs = []
    for r in (1, 2, 3):
        text = open(f"{out}/wrk-{name}-{r}.txt").read()
        runs.append(float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)))
    return statistics.median(runs)


paths = [("direct", "direct"), ("nginx", "nginx"), ("bare", "bare\nPingora"), ("none", "mcpgate\nauth: none"),
         ("none_d", "mcpgate none,\ndefault logs"), ("jwt", "mcpgate\nJWT cached"),
         ("jwt_d", "mcpgate JWT,\ndefault logs"), ("fresh", "mcpgate JWT,\nnew token")]
fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.2))
values = [rps(key) for key, _ in paths]
left.bar([label for _, label in paths], values, color=["#888", "#2a7", "#b83"] + ["#36c"] * 5)
left.set_title("tools/call throughput (wrk, median of 3)")
left.set_ylabel("requests per second")
for i, v in enumerate(values):
    left.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
left.tick_params(axis="x", labelsize=8)

latency = [("direct", "direct"), ("nginx", "nginx"), ("none", "mcpgate none"), ("jwt", "mcpgate JWT"),
           ("jwt_d", "mcpgate JWT,\ndefault logs")]
percentiles = ["p(50)", "p(99)", "p(99.9)"]
width = 0.16
for j, (key, label) in enumerate(latency):
    metric = json.load(open(f"{out}/k6-{key}.json"))["metrics"]["http_req_duration"]
    xs = [i + (j - (len(latency) - 1) / 2) * width for i in range(len(percentiles))]
    right.bar(xs, [metric[p] for p in percentiles], width, label=label)
right.set_xticks(range(len(percentiles)), percentiles)
right.set_yscale("log")
right.set_ylabel("ms (log)")
right.set_title("latency at a fixed 2,000 requests/s (k6)")
right.legend(fontsize=8)
fig.tight_layout()
fig.savefig(image, dpi=110)
print(image)
