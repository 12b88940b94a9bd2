"""Cost per asset of a burst of uploads on AWS Batch: every term shown, none hidden.

The model (docs/cost.md):

* A burst of ``burst`` photos becomes ``ceil(burst / photos_per_job)`` Batch jobs (one photo
  per job is what the stack does today).
* Jobs run one at a time per instance (a job asks for the instance's single GPU and its
  ``job_vcpus``), on at most ``max_vcpus // instance vCPUs`` instances, started together.
  Jobs go longest first to the least busy instance.
* Each instance is billed per second, with a 60 s minimum, from boot to termination: boot,
  the image pull, its jobs, then the idle time before Batch terminates it. Each job pays its
  container start, the imports and the model load, then per photo the generator and the I/O.
* Plus the root EBS volume for as long as each instance lives, and the per-asset requests
  (S3, DynamoDB, SQS, Lambda, EventBridge, SNS).

Prices and timings come from ``cost_prices.json`` next to this module; each timing says
whether it was measured (and where) or is an estimate.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("cost_prices.json")
CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"
GOAL_USD_PER_ASSET = 0.002
MIN_BILLED_S = 60.0
HOURS_PER_MONTH = 730.0
MARKETS = ("spot", "on-demand")
BACKENDS = ("triposr", "priors")
PRESETS = ("fast", "balanced", "quality")

#: The stack's defaults (infra/settings.py), used where cdk.json cannot be read.
DEPLOYMENT_DEFAULTS: dict[str, Any] = {
    "max_vcpus": 32,
    "spot": True,
    "job_vcpus": 4,
    "root_volume_gib": 100,
    "gpu_instance_types": ["g5.xlarge", "g6.xlarge", "g4dn.xlarge"],
    "pack_size": 10,
    "pack_wait_seconds": 5,
}


@dataclass(frozen=True)
class Scenario:
    """What is being priced.

    Parameters
    ----------
    burst
        Photos uploaded at once.
    instance
        EC2 instance type (a key of ``cost_prices.json``'s ``instances``).
    market
        ``spot`` or ``on-demand``.
    photos_per_job
        Photos one Batch job generates (1: the stack today).
    preset, backend
        The job options priced (``triposr``: the learned model on the GPU).
    max_vcpus
        vCPUs the market's compute environment may run; ``None``: the deployed share.
    """

    burst: int
    instance: str = "g5.xlarge"
    market: str = "spot"
    photos_per_job: int = 1
    preset: str = "balanced"
    backend: str = "triposr"
    max_vcpus: int | None = None

    def __post_init__(self) -> None:
        if self.burst < 1 or self.photos_per_job < 1:
            raise ValueError("burst and photos_per_job must be at least 1")
        if self.market not in MARKETS:
            raise ValueError(f"market must be one of {MARKETS}, not {self.market!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {self.backend!r}")
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {PRESETS}, not {self.preset!r}")


@dataclass(frozen=True)
class Term:
    """One line of the bill: instance-seconds (0 for non-instance terms) and dollars."""

    name: str
    count: float  # how many times it is paid (instances, jobs, photos)
    seconds_each: float
    usd: float
    source: str  # measured | estimate | price
    note: str = ""

    @property
    def seconds(self) -> float:
        return self.count * self.seconds_each


@dataclass
class Estimate:
    """The priced burst: its terms, totals and how long it takes."""

    scenario: Scenario
    usd_per_hour: float
    price_date: str
    max_vcpus: int
    jobs: int
    instances: int
    wall_s: float
    billed_instance_s: float
    terms: list[Term] = field(default_factory=list)
    marginal_usd_per_asset: float = 0.0

    @property
    def total_usd(self) -> float:
        return sum(t.usd for t in self.terms)

    @property
    def usd_per_asset(self) -> float:
        return self.total_usd / self.scenario.burst

    @property
    def meets_goal(self) -> bool:
        return self.usd_per_asset <= GOAL_USD_PER_ASSET

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the scenario, each term and the totals."""
        return {
            "scenario": asdict(self.scenario),
            "usd_per_hour": self.usd_per_hour,
            "price_date": self.price_date,
            "max_vcpus": self.max_vcpus,
            "jobs": self.jobs,
            "instances": self.instances,
            "wall_s": round(self.wall_s, 1),
            "billed_instance_s": round(self.billed_instance_s, 1),
            "terms": [
                asdict(t) | {"seconds": round(t.seconds, 2), "usd": round(t.usd, 6)}
                for t in self.terms
            ],
            "total_usd": round(self.total_usd, 6),
            "usd_per_asset": round(self.usd_per_asset, 6),
            "marginal_usd_per_asset": round(self.marginal_usd_per_asset, 6),
            "goal_usd_per_asset": GOAL_USD_PER_ASSET,
            "meets_goal": self.meets_goal,
        }


def load_prices(path: Path = PRICES_FILE) -> dict[str, Any]:
    """The prices and timings file."""
    return json.loads(path.read_text())


def deployment(path: Path = CDK_JSON) -> dict[str, Any]:
    """The stack's settings that shape the bill, from ``cdk.json`` where it is readable.

    Read as JSON rather than through ``infra.settings``, which imports the CDK (seconds, and a
    Node.js runtime) for what are four numbers.
    """
    values = dict(DEPLOYMENT_DEFAULTS)
    try:
        context = json.loads(path.read_text()).get("context", {})
    except (OSError, ValueError):
        return values
    for name in values:
        if f"meshdrop:{name}" in context:
            values[name] = context[f"meshdrop:{name}"]
    return values


def market_vcpus(max_vcpus: int, spot_enabled: bool, market: str) -> int:
    """The vCPUs of ``market``'s compute environment, split as ``infra.compute.vcpu_split``.

    With Spot enabled the cap is halved between a Spot and an on-demand environment (Spot
    gets the odd one); without it, on-demand gets the whole cap and Spot none.
    """
    if not spot_enabled:
        return max_vcpus if market == "on-demand" else 0
    on_demand = max_vcpus // 2
    return max_vcpus - on_demand if market == "spot" else on_demand


def _timing(entry: dict[str, Any]) -> tuple[float, str, str]:
    """(seconds, source, note) of one timing entry."""
    return float(entry["value"]), str(entry["source"]), str(entry.get("note", ""))


def photo_seconds(prices: dict[str, Any], backend: str, instance: str, preset: str) -> float:
    """Seconds of generator work per photo (per instance type, or ``*`` for any)."""
    table = prices["timings"]["backends"][backend]["photo_s"]
    row = table.get(instance) or table.get("*")
    if row is None:
        raise ValueError(f"no {backend} photo timing for {instance}; known: {sorted(table)}")
    return float(row[preset])


def schedule(job_seconds: list[float], instances: int) -> list[float]:
    """Busy seconds per instance: longest job first onto the least busy instance."""
    busy = [0.0] * max(1, instances)
    heap = [(0.0, i) for i in range(len(busy))]
    for seconds in sorted(job_seconds, reverse=True):
        load, i = heapq.heappop(heap)
        busy[i] = load + seconds
        heapq.heappush(heap, (busy[i], i))
    return busy


def _price(prices: dict[str, Any], scenario: Scenario) -> tuple[float, str, int]:
    try:
        spec = prices["instances"][scenario.instance]
    except KeyError:
        known = ", ".join(sorted(prices["instances"]))
        raise ValueError(f"no price for {scenario.instance}; known: {known}") from None
    entry = spec["on_demand" if scenario.market == "on-demand" else "spot"]
    return float(entry["usd_per_hour"]), str(entry["date"]), int(spec["vcpus"])


def _capacity(scenario: Scenario, deployed: dict[str, Any], instance_vcpus: int) -> tuple[int, int]:
    """(max vCPUs, instances at once) for the scenario's market."""
    vcpus = scenario.max_vcpus
    if vcpus is None:
        vcpus = market_vcpus(int(deployed["max_vcpus"]), bool(deployed["spot"]), scenario.market)
        if vcpus == 0:  # an on-demand-only stack asked about Spot: price it as if enabled
            vcpus = int(deployed["max_vcpus"])
    slots = vcpus // max(instance_vcpus, int(deployed["job_vcpus"]))
    if slots < 1:
        raise ValueError(f"{vcpus} vCPUs cannot run one {scenario.instance} job")
    return vcpus, slots


Timing = tuple[float, str, str]  # seconds, measured | estimate, note


def figures(
    prices: dict[str, Any], scenario: Scenario
) -> tuple[dict[str, Timing], dict[str, Timing], dict[str, Timing]]:
    """The timings paid once per instance, once per job and once per photo, by term name."""
    t = prices["timings"]
    backend = t["backends"][scenario.backend]
    photo = backend["photo_s"]
    per_instance = {
        "instance boot": _timing(t["instance_boot_s"]),
        "image pull": _timing(t["image_pull_s"]),
        "idle before terminate": _timing(t["idle_before_terminate_s"]),
    }
    per_job = {
        "container start": _timing(t["container_start_s"]),
        "imports": _timing(backend["imports_s"]),
        "model load": _timing(backend["model_load_s"]),
    }
    per_photo = {
        "generator per photo": (
            photo_seconds(prices, scenario.backend, scenario.instance, scenario.preset),
            str(photo["source"]),
            str(photo.get("note", "")),
        ),
        "photo I/O": _timing(t["photo_io_s"]),
    }
    return per_instance, per_job, per_photo


def estimate(
    scenario: Scenario,
    prices: dict[str, Any] | None = None,
    deployed: dict[str, Any] | None = None,
) -> Estimate:
    """Price ``scenario``; every term of the bill is in ``Estimate.terms``."""
    prices = prices or load_prices()
    deployed = deployed or deployment()
    usd_per_hour, price_date, instance_vcpus = _price(prices, scenario)
    vcpus, slots = _capacity(scenario, deployed, instance_vcpus)
    per_instance, per_job, per_photo = figures(prices, scenario)
    job_s = sum(v[0] for v in per_job.values())
    photo_s = sum(v[0] for v in per_photo.values())
    n, k = scenario.burst, scenario.photos_per_job
    sizes = [k] * (n // k) + ([n % k] if n % k else [])
    jobs = len(sizes)
    instances = min(jobs, slots)
    busy = schedule([job_s + size * photo_s for size in sizes], instances)
    lifetimes = [sum(v[0] for v in per_instance.values()) + b for b in busy]
    billed = [max(MIN_BILLED_S, life) for life in lifetimes]
    per_s = usd_per_hour / 3600.0

    def term(name: str, count: float, each: Timing) -> Term:
        return Term(name, count, each[0], count * each[0] * per_s, each[1], each[2])

    top_up = (sum(billed) - sum(lifetimes), "price", "per-second billing, 60 s minimum each")
    terms = [
        *(term(name, instances, v) for name, v in per_instance.items()),
        *(term(name, jobs, v) for name, v in per_job.items()),
        *(term(name, n, v) for name, v in per_photo.items()),
        term("60 s minimum top-up", 1, top_up),
    ]
    ebs_per_s = _ebs_usd_per_s(prices, deployed)
    requests = _requests_usd_per_asset(prices)
    gib = deployed["root_volume_gib"]
    terms += [
        Term("root EBS volumes", 1, 0.0, sum(billed) * ebs_per_s, "price", f"{gib} GiB gp3 each"),
        Term("AWS requests", n, 0.0, n * requests, "estimate", "S3, DynamoDB, SQS, Lambda, ..."),
    ]
    wait = _timing(prices["timings"]["scale_up_wait_s"])[0]
    return Estimate(
        scenario=scenario,
        usd_per_hour=usd_per_hour,
        price_date=price_date,
        max_vcpus=vcpus,
        jobs=jobs,
        instances=instances,
        # Idle time after the last job is billed but the burst is done by then.
        wall_s=wait + per_instance["instance boot"][0] + per_instance["image pull"][0] + max(busy),
        billed_instance_s=sum(billed),
        terms=terms,
        # A very long burst: boot, pull and idle vanish per asset; job start-up is shared by k.
        marginal_usd_per_asset=(job_s / k + photo_s) * (per_s + ebs_per_s) + requests,
    )


def _ebs_usd_per_s(prices: dict[str, Any], deployed: dict[str, Any]) -> float:
    """Dollars per second of one instance's root volume."""
    gp3 = float(prices["ebs_gp3_usd_per_gib_month"]["value"])
    return float(deployed["root_volume_gib"]) * gp3 / (HOURS_PER_MONTH * 3600.0)


def _requests_usd_per_asset(prices: dict[str, Any]) -> float:
    """The itemised per-asset requests (S3, DynamoDB, SQS, Lambda, EventBridge, SNS)."""
    items = prices["requests_per_asset"]["items"]
    return sum(float(i["count"]) * float(i["usd_each"]) for i in items)


def compare(
    bursts: tuple[int, ...] = (1, 100, 10_000),
    instances: tuple[str, ...] = ("g4dn.xlarge", "g5.xlarge", "g6.xlarge"),
    photos_per_job: tuple[int, ...] = (1, 50),
    *,
    preset: str = "balanced",
    backend: str = "triposr",
    prices: dict[str, Any] | None = None,
    deployed: dict[str, Any] | None = None,
) -> list[Estimate]:
    """Every combination of burst, instance type, market and photos per job."""
    prices = prices or load_prices()
    deployed = deployed or deployment()
    return [
        estimate(Scenario(b, i, m, k, preset, backend), prices, deployed)
        for b in bursts
        for i in instances
        for m in MARKETS
        for k in photos_per_job
    ]


def render(result: Estimate) -> str:
    """The bill as a plain-text table, one line per term."""
    s = result.scenario
    lines = [
        f"{s.burst} photo(s), {s.preset} preset, {s.backend} on {s.instance} {s.market} "
        f"(${result.usd_per_hour:.4f}/h, price of {result.price_date}), "
        f"{s.photos_per_job} photo(s) per job",
        f"{result.jobs} job(s) on {result.instances} instance(s) at once "
        f"({result.max_vcpus} vCPUs in the compute environment); about "
        f"{result.wall_s / 60:.1f} min from upload to the last asset",
        "",
        f"{'term':<24} {'count':>7} {'s each':>8} {'inst-s':>9} {'USD':>10} {'share':>6}  source",
    ]
    total = result.total_usd or 1.0
    for t in result.terms:
        lines.append(
            f"{t.name:<24} {t.count:>7g} {t.seconds_each:>8.2f} {t.seconds:>9.1f} "
            f"{t.usd:>10.5f} {t.usd / total:>6.1%}  {t.source}"
        )
    verdict = "meets" if result.meets_goal else "misses"
    lines += [
        f"{'total':<24} {'':>7} {'':>8} {result.billed_instance_s:>9.1f} {result.total_usd:>10.5f}",
        "",
        f"per asset: ${result.usd_per_asset:.5f} ({verdict} the ${GOAL_USD_PER_ASSET} goal); "
        f"a long burst tends to ${result.marginal_usd_per_asset:.5f}",
    ]
    return "\n".join(lines)


def render_compare(results: list[Estimate]) -> str:
    """One line per scenario: the grid of docs/cost.md."""
    lines = [
        f"{'burst':>6} {'instance':<12} {'market':<9} {'per job':>7} {'jobs':>6} {'inst':>4} "
        f"{'wall min':>8} {'USD total':>10} {'USD/asset':>9}  goal",
    ]
    for r in results:
        s = r.scenario
        lines.append(
            f"{s.burst:>6} {s.instance:<12} {s.market:<9} {s.photos_per_job:>7} {r.jobs:>6} "
            f"{r.instances:>4} {r.wall_s / 60:>8.1f} {r.total_usd:>10.4f} "
            f"{r.usd_per_asset:>9.5f}  {'met' if r.meets_goal else 'missed'}"
        )
    return "\n".join(lines)
