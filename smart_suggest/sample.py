"""Demo data and synthetic data with the same structure.

``load_demo`` loads the shipped catalogue (``sample_data/``: 20 items, 50 users in three
taste segments), a clustered interaction history and one active A/B experiment (v1 vs v2)
with seven days of events in which the treatment truly performs better.

``generate`` builds data of any size with the same structure: categories with their own
vocabulary (so content-based filtering has text to work on), taste clusters in the
interaction history (so neighbours exist), and a true treatment effect in the events.

Both are deterministic for a given seed (timestamps are relative to ``clock.now()``; fix
``SMART_SUGGEST_NOW`` for byte-identical databases) and write everything in one
transaction after clearing the old data, so an interrupted seed leaves the previous data
intact.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

import numpy as np

from smart_suggest import clock, validate
from smart_suggest.errors import InputError
from smart_suggest.experiments.assignment import assign_many
from smart_suggest.store import TABLES, Store

#: progress(stage, done, total): called as work advances, for progress bars.
Progress = Callable[[str, int, int], None]

DEMO_EXPERIMENT = "homepage-recs-v1-vs-v2"
CATEGORIES = (
    "electronics",
    "books",
    "clothing",
    "sports",
    "home appliances",
    "health",
    "beauty",
)
#: Taste clusters of the synthetic generator (the demo's are in sample_data/segments.json).
SEGMENTS: dict[str, tuple[str, ...]] = {
    "tech": ("electronics", "books"),
    "active": ("sports", "health"),
    "lifestyle": ("clothing", "home appliances", "beauty"),
}
_VOCABULARY: dict[str, tuple[str, ...]] = {
    "electronics": (
        "wireless",
        "battery",
        "bluetooth",
        "screen",
        "smart",
        "charger",
        "audio",
        "display",
        "usb",
        "digital",
        "camera",
        "processor",
        "hd",
        "speaker",
    ),
    "books": (
        "novel",
        "author",
        "chapter",
        "story",
        "guide",
        "edition",
        "hardcover",
        "programming",
        "history",
        "mystery",
        "science",
        "fiction",
        "poetry",
        "essays",
    ),
    "clothing": (
        "cotton",
        "jacket",
        "denim",
        "slim",
        "fit",
        "wool",
        "casual",
        "shirt",
        "sleeve",
        "winter",
        "summer",
        "style",
        "knit",
        "linen",
    ),
    "sports": (
        "running",
        "training",
        "gym",
        "yoga",
        "outdoor",
        "cycling",
        "lightweight",
        "grip",
        "marathon",
        "workout",
        "hiking",
        "football",
        "tennis",
        "swim",
    ),
    "home appliances": (
        "kitchen",
        "cleaning",
        "vacuum",
        "coffee",
        "energy",
        "blender",
        "oven",
        "washer",
        "quiet",
        "purifier",
        "heater",
        "fridge",
        "steam",
        "timer",
    ),
    "health": (
        "vitamin",
        "protein",
        "supplement",
        "immune",
        "sleep",
        "heart",
        "recovery",
        "natural",
        "organic",
        "wellness",
        "fiber",
        "omega",
        "tracker",
        "diet",
    ),
    "beauty": (
        "skin",
        "serum",
        "hydrating",
        "glow",
        "lip",
        "fragrance",
        "cream",
        "spf",
        "makeup",
        "hair",
        "scent",
        "cleanser",
        "mask",
        "balm",
    ),
}
_COMMON_WORDS = ("premium", "classic", "new", "durable", "compact", "best", "everyday", "quality")

#: The demo experiment's true rates: CTR per impression 0.30 vs 0.42; purchase = conversion
#: rate (share of exposed users who buy) 0.12 vs 0.18; mean engagement 45 s vs 55 s.
DEMO_RATES = {
    "A": {"ctr": 0.30, "purchase": 0.12, "engagement": 45.0},
    "B": {"ctr": 0.42, "purchase": 0.18, "engagement": 55.0},
}
_ACTION_P = (0.65, 0.25, 0.10)  # view, click, purchase


@dataclass(frozen=True, slots=True)
class SeedReport:
    users: int
    items: int
    interactions: int
    experiments: int
    assignments: int
    events: int
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read_sample(name: str) -> str:
    return resources.files("smart_suggest.sample_data").joinpath(name).read_text("utf-8")


def demo_catalogue() -> tuple[list[dict[str, str]], list[dict[str, str]], dict[str, Any]]:
    """(items, users, segments) as shipped in ``sample_data/``."""
    items = list(csv.DictReader(io.StringIO(_read_sample("items.csv"))))
    users = list(csv.DictReader(io.StringIO(_read_sample("users.csv"))))
    segments = json.loads(_read_sample("segments.json"))
    return items, users, segments


def _noop(stage: str, done: int, total: int) -> None:
    pass


def _chunks(rows: Iterable[tuple[Any, ...]], size: int = 50_000) -> Iterator[list[tuple[Any, ...]]]:
    buf: list[tuple[Any, ...]] = []
    for row in rows:
        buf.append(row)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def _insert(
    store: Store,
    sql: str,
    rows: Iterable[tuple[Any, ...]],
    stage: str,
    total: int,
    progress: Progress,
) -> int:
    done = 0
    progress(stage, 0, total)
    for chunk in _chunks(rows):
        store.conn.executemany(sql, chunk)
        done += len(chunk)
        progress(stage, done, total)
    return done


def _clear(store: Store) -> None:
    for table in reversed(TABLES):
        store.conn.execute(f"DELETE FROM {table}")


def _insert_experiment(store: Store, name: str, description: str, created: float) -> int:
    cur = store.conn.execute(
        "INSERT INTO experiments(name, description, control, treatment, traffic_fraction, "
        "treatment_share, primary_metric, status, created_at) "
        "VALUES (?, ?, 'v1', 'v2', 1.0, 0.5, 'ctr', 'active', ?)",
        (name, description, created),
    )
    exp_id = int(cur.lastrowid or 0)
    store.conn.execute(
        "INSERT INTO experiment_variants(experiment_id, label, strategy, weight) "
        "VALUES (?, 'A', 'v1', 0.5), (?, 'B', 'v2', 0.5)",
        (exp_id, exp_id),
    )
    return exp_id


# -- the demo ----------------------------------------------------------------------------
def load_demo(store: Store, *, seed: int = 42, progress: Progress | None = None) -> SeedReport:
    """Replace all data with the demo catalogue, history and experiment."""
    progress = progress or _noop
    rng = np.random.default_rng(seed)
    items, users, segments = demo_catalogue()
    now = clock.now()
    start = now - 7 * clock.DAY
    validate.check_span(start - 30 * clock.DAY, now + clock.DAY, "the demo data")
    by_category: dict[str, list[int]] = {}
    for it in items:
        by_category.setdefault(it["category"], []).append(int(it["id"]))
    all_items = [int(it["id"]) for it in items]

    with store.write():
        _clear(store)
        store.conn.executemany(
            "INSERT INTO items(id, name, category, description, created_at) VALUES (?,?,?,?,?)",
            [
                (int(i["id"]), i["name"], i["category"], i["description"], start - 30 * clock.DAY)
                for i in items
            ],
        )
        store.conn.executemany(
            "INSERT INTO users(id, username, created_at) VALUES (?, ?, ?)",
            [(int(u["id"]), u["username"], start - 20 * clock.DAY) for u in users],
        )
        # Clustered history: most interactions inside the user's segment categories.
        interactions: list[tuple[int, int, str, float]] = []
        for u in users:
            uid = int(u["id"])
            liked = [
                i for c in segments[u["segment"]]["categories"] for i in by_category.get(c, [])
            ]
            n = int(rng.integers(6, 13))
            for _ in range(n):
                pool = liked if rng.random() < 0.85 else all_items
                item = int(rng.choice(pool))
                action = str(rng.choice(("view", "click", "purchase"), p=_ACTION_P))
                ts = float(start - rng.uniform(0, 14) * clock.DAY)
                interactions.append((uid, item, action, round(ts, 3)))
        interactions.sort(key=lambda r: r[3])
        store.conn.executemany(
            "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (?, ?, ?, ?)",
            interactions,
        )
        exp_id = _insert_experiment(
            store,
            DEMO_EXPERIMENT,
            "Home page recommendations: collaborative v1 (control) vs content-based v2.",
            start,
        )
        user_ids = [int(u["id"]) for u in users]
        variants = assign_many(exp_id, user_ids, 1.0, 0.5)
        events = _demo_events(rng, exp_id, user_ids, variants, all_items, start)
        first_seen: dict[int, float] = {}
        for e in events:  # sorted by time: the first event of a user is their exposure
            first_seen.setdefault(e[2], e[6])
        store.conn.executemany(
            "INSERT INTO assignments(experiment_id, user_id, variant, assigned_at) "
            "VALUES (?, ?, ?, ?)",
            [
                (exp_id, uid, v, first_seen.get(uid, start))
                for uid, v in zip(user_ids, variants, strict=True)
                if v
            ],
        )
        store.conn.executemany(
            "INSERT INTO events(experiment_id, variant, user_id, item_id, type, value, ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            events,
        )
        progress("demo", 1, 1)
    return SeedReport(
        len(users), len(items), len(interactions), 1, sum(1 for v in variants if v), len(events)
    )


def _demo_events(
    rng: np.random.Generator,
    exp_id: int,
    user_ids: list[int],
    variants: list[str | None],
    items: list[int],
    start: float,
) -> list[tuple[Any, ...]]:
    """Seven days of visits: 1-3 sessions of 5 impressions on each day a user comes back.

    Clicks (with an engagement time each) follow at the variant's CTR; each exposed user
    converts with the variant's purchase rate: one purchase after one of their clicks.
    """
    events: list[tuple[Any, ...]] = []
    for uid, variant in zip(user_ids, variants, strict=True):
        if variant is None:
            continue
        rates = DEMO_RATES[variant]
        converts = rng.random() < rates["purchase"]
        clicks: list[tuple[int, float]] = []
        first_day = int(rng.integers(0, 3))  # users arrive over the first days
        for day in range(first_day, 7):
            if day > first_day and rng.random() > 0.7:
                continue  # not every user comes back every day
            for _ in range(int(rng.integers(1, 4))):
                t = start + (day + rng.uniform(0.05, 0.9)) * clock.DAY
                shown = rng.choice(items, size=5, replace=False)
                for k, item in enumerate(shown):
                    ts = round(float(t + k), 3)
                    events.append((exp_id, variant, uid, int(item), "impression", None, ts))
                    if rng.random() < rates["ctr"]:
                        events.append((exp_id, variant, uid, int(item), "click", None, ts + 5))
                        dwell = float(rng.lognormal(np.log(rates["engagement"]), 0.6))
                        events.append(
                            (exp_id, variant, uid, int(item), "engagement", round(dwell, 2), ts + 6)
                        )
                        clicks.append((int(item), ts))
        if converts and clicks:
            item, ts = clicks[int(rng.integers(0, len(clicks)))]
            events.append((exp_id, variant, uid, item, "purchase", None, ts + 60))
    events.sort(key=lambda e: e[6])
    return events


# -- synthetic data at any size ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SyntheticSpec:
    users: int = 10_000
    items: int = 2_000
    interactions: int = 1_000_000
    events: int = 1_000_000
    days: int = 14
    seed: int = 42
    ctr_a: float = 0.30
    ctr_b: float = 0.42
    purchase_a: float = 0.12
    purchase_b: float = 0.18

    def validate(self) -> None:
        if self.users < 2 or self.items < len(CATEGORIES):
            raise InputError(f"need at least 2 users and {len(CATEGORIES)} items")
        if self.interactions < 0 or self.events < 0:
            raise InputError("interaction and event counts must not be negative")
        if self.days < 1:
            raise InputError("--days must be at least 1")
        # Upper bounds: past these the generator would exhaust memory or run for hours.
        for name, value, limit in (
            ("users", self.users, 50_000_000),
            ("items", self.items, 5_000_000),
            ("interactions", self.interactions, 1_000_000_000),
            ("events", self.events, 1_000_000_000),
            ("days", self.days, 3_650),
        ):
            if value > limit:
                raise InputError(f"--{name} must be at most {limit:,}")
        if self.seed < 0:
            raise InputError("--seed must not be negative")


#: Each category has this many sub-topics; an item's description leans on its topic's
#: words and users favour one topic, so the text carries taste beyond the category.
TOPICS = 6
_BRANDS = (
    "aurora",
    "vertex",
    "nimbus",
    "solace",
    "ember",
    "zenith",
    "harbor",
    "quill",
    "tundra",
    "lumen",
    "cobalt",
    "saffron",
    "orbit",
    "willow",
    "granite",
    "meridian",
    "halcyon",
    "pioneer",
    "summit",
    "cascade",
    "juniper",
    "onyx",
    "sierra",
    "atlas",
    "breeze",
    "canyon",
    "delta",
    "falcon",
    "glacier",
    "horizon",
    "indigo",
    "jade",
    "kestrel",
    "lagoon",
    "maple",
    "nova",
    "opal",
    "prairie",
    "raven",
    "sequoia",
    "topaz",
    "umber",
)


def _topic_words(category: str, topic: int) -> tuple[str, ...]:
    """A product line: a brand name plus a slice of the category's vocabulary."""
    vocab = _VOCABULARY[category]
    brand = _BRANDS[(CATEGORIES.index(category) * TOPICS + topic) % len(_BRANDS)]
    return (brand, *vocab[topic % 3 :: 3])


#: Cross-cutting style categories, one per sub-topic: an item is, say, "books" and
#: "budget". Users favour one sub-topic whatever the category (``user_topic``), as film
#: lovers favour a genre across others, so a second category carries real taste.
STYLES = ("budget", "premium", "eco-friendly", "compact", "family", "professional")
#: Share of items that carry their style as a second category (the rest have only one).
STYLE_SHARE = 0.85


def item_categories(seed: int, n_items: int) -> list[tuple[str, ...]]:
    """The synthetic items' categories: the main one, then (mostly) the style.

    Drawn from their own stream, so adding them changed no other generated value.
    """
    rng = np.random.default_rng([seed, 6])
    styled = rng.random(n_items) < STYLE_SHARE
    out: list[tuple[str, ...]] = []
    for index in range(n_items):
        main = CATEGORIES[index % len(CATEGORIES)]
        style = STYLES[(index // len(CATEGORIES)) % TOPICS]
        out.append((main, style) if styled[index] else (main,))
    return out


def _item_catalogue(rng: np.random.Generator, n_items: int) -> list[tuple[int, str, str, str]]:
    rows = []
    for item_id in range(1, n_items + 1):
        index = item_id - 1
        category = CATEGORIES[index % len(CATEGORIES)]
        topical = _topic_words(category, (index // len(CATEGORIES)) % TOPICS)
        words = [topical[0], *rng.choice(topical[1:], size=3, replace=False)]
        others = [w for w in _VOCABULARY[category] if w not in words]
        words += list(rng.choice(others, size=2, replace=False))
        words += list(rng.choice(_COMMON_WORDS, size=2, replace=False))
        brand, first, second = words[0], words[1], words[4]
        rng.shuffle(words)
        name = f"{brand.capitalize()} {first} {second} #{item_id}"
        rows.append((item_id, name, category, " ".join(words)))
    return rows


def generate(store: Store, spec: SyntheticSpec, *, progress: Progress | None = None) -> SeedReport:
    """Replace all data with synthetic data of the given size (one transaction)."""
    spec.validate()
    progress = progress or _noop
    rng = np.random.default_rng(spec.seed)
    now = clock.now()
    exp_start = now - spec.days * clock.DAY
    hist_start = exp_start - 60 * clock.DAY
    validate.check_span(hist_start, now + clock.DAY, "the synthetic data")
    n_cat = len(CATEGORIES)
    catalogue = _item_catalogue(rng, spec.items)
    item_cat = (np.arange(spec.items) % n_cat).astype(np.int64)  # item index -> category index
    seg_names = list(SEGMENTS)
    user_seg = rng.integers(0, len(seg_names), size=spec.users)

    with store.bulk_load(TABLES, trusted=True):
        _clear(store)
        _insert(
            store,
            "INSERT INTO items(id, name, category, description, created_at) VALUES (?, ?, ?, ?, ?)",
            ((i, n, c, d, hist_start) for i, n, c, d in catalogue),
            "items",
            spec.items,
            progress,
        )
        cats = item_categories(spec.seed, spec.items)
        store.conn.executemany(
            "INSERT INTO item_categories(item_id, category, position) VALUES (?, ?, ?)",
            ((i, c, k) for i, cs in enumerate(cats, start=1) for k, c in enumerate(cs)),
        )
        _insert(
            store,
            "INSERT INTO users(id, username, created_at) VALUES (?, ?, ?)",
            ((u, f"user{u:06d}", hist_start) for u in range(1, spec.users + 1)),
            "users",
            spec.users,
            progress,
        )
        rows = _synthetic_interactions(
            rng, spec, user_seg, item_cat, seg_names, hist_start, exp_start
        )
        n_inter = _insert(
            store,
            "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (?, ?, ?, ?)",
            rows,
            "interactions",
            spec.interactions,
            progress,
        )
        exp_id = _insert_experiment(
            store,
            DEMO_EXPERIMENT,
            "Synthetic experiment: collaborative v1 (control) vs content-based v2.",
            exp_start,
        )
        user_ids = list(range(1, spec.users + 1))
        variants = assign_many(exp_id, user_ids, 1.0, 0.5)
        n_assigned = _insert(
            store,
            "INSERT INTO assignments(experiment_id, user_id, variant, assigned_at) "
            "VALUES (?, ?, ?, ?)",
            ((exp_id, u, v, exp_start) for u, v in zip(user_ids, variants, strict=True) if v),
            "assignments",
            spec.users,
            progress,
        )
        is_b = np.array([v == "B" for v in variants], dtype=bool)
        n_events = _insert(
            store,
            "INSERT INTO events(experiment_id, variant, user_id, item_id, type, value, ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            _synthetic_events(rng, spec, exp_id, is_b, exp_start),
            "events",
            spec.events,
            progress,
        )
    return SeedReport(spec.users, spec.items, n_inter, 1, n_assigned, n_events)


#: The interaction model (``taste_model``), calibrated against the real MovieLens 100K
#: (README "Synthetic data"; ``benchmarks/bench_movielens.py`` measures both). Items and
#: users are points in a latent space of ``LATENT_DIM`` dimensions: an item is its
#: category's direction, plus its topic's, plus its own; a user mixes the categories of
#: their segment with their own weights, leans towards one topic and has a direction of
#: their own. So users are not copies of a few types (a neighbour method finds no exact
#: twins, as on real data), while categories and topics still carry most of the taste.
LATENT_DIM = 24
#: Scale of the category, topic and item-specific parts of an item's vector.
CATEGORY_SCALE, TOPIC_SCALE, ITEM_SCALE = 1.0, 0.7, 0.8
#: Scale of a user's own direction next to their segment and topic.
USER_SCALE = 0.8
#: Sharpness of taste: P(item | user) ~ popularity x exp(TASTE x user . item).
TASTE = 2.0
#: Item popularity is log-normal with this sigma (MovieLens 100K: the top 10% of the
#: films hold ~43% of the ratings).
POPULARITY_SIGMA = 1.3
#: A user's activity is log-normal with this sigma (MovieLens 100K: median 65 ratings,
#: 90th percentile 244).
ACTIVITY_SIGMA = 1.2
#: Every user has at least this many interactions (MovieLens keeps users with 20 or more
#: ratings), or fewer when the requested total is too small for that.
MIN_ACTIVITY = 20
#: Browsing order: each user goes through their items in the order of a score along a
#: direction of their own in the latent space, plus this much noise (standard deviations
#: of the score). Lower: consecutive items resemble each other more. MovieLens users rate
#: this way (most in one sitting, films next to similar films), which is what makes the
#: chronological split differ from a random one.
BROWSING_NOISE = 0.5


@dataclass(frozen=True, slots=True)
class TasteModel:
    """What the synthetic interactions are drawn from (see ``taste_model``)."""

    item_vectors: np.ndarray  # items x LATENT_DIM
    user_vectors: np.ndarray  # users x LATENT_DIM
    log_popularity: np.ndarray  # items
    activity: np.ndarray  # users, sums to 1
    browse: np.ndarray  # users x LATENT_DIM: each user's browsing direction

    def logits(self, users: np.ndarray) -> np.ndarray:
        """log P(item | user) up to a constant per user: (len(users) x items)."""
        return TASTE * (self.user_vectors[users] @ self.item_vectors.T) + self.log_popularity


def taste_model(seed: int, n_users: int, n_items: int, user_seg: np.ndarray) -> TasteModel:
    """The latent taste model of ``generate`` (its own random stream: replayable)."""
    rng = np.random.default_rng([seed, 8])
    n_cat = len(CATEGORIES)
    cat_axis = rng.normal(0.0, 1.0, (n_cat, LATENT_DIM)) / np.sqrt(LATENT_DIM)
    topic_axis = rng.normal(0.0, 1.0, (n_cat, TOPICS, LATENT_DIM)) / np.sqrt(LATENT_DIM)
    index = np.arange(n_items)
    item_cat, item_topic = index % n_cat, (index // n_cat) % TOPICS
    items = (
        CATEGORY_SCALE * cat_axis[item_cat]
        + TOPIC_SCALE * topic_axis[item_cat, item_topic]
        + ITEM_SCALE * rng.normal(0.0, 1.0, (n_items, LATENT_DIM)) / np.sqrt(LATENT_DIM)
    )
    seg_cats = [[CATEGORIES.index(c) for c in SEGMENTS[s]] for s in SEGMENTS]
    user_topic = rng.integers(0, TOPICS, size=n_users)
    users = USER_SCALE * rng.normal(0.0, 1.0, (n_users, LATENT_DIM)) / np.sqrt(LATENT_DIM)
    for s, cats in enumerate(seg_cats):
        members = np.flatnonzero(user_seg == s)
        mix = rng.dirichlet(np.ones(len(cats)), size=len(members))  # own weight per category
        for k, c in enumerate(cats):
            part = CATEGORY_SCALE * cat_axis[c] + TOPIC_SCALE * topic_axis[c, user_topic[members]]
            users[members] += len(cats) * mix[:, k : k + 1] * part / np.sqrt(len(cats))
    log_pop = rng.normal(0.0, POPULARITY_SIGMA, n_items)
    activity = rng.lognormal(0.0, ACTIVITY_SIGMA, n_users)
    browse = rng.normal(0.0, 1.0, (n_users, LATENT_DIM))
    return TasteModel(items, users, log_pop, activity / activity.sum(), browse)


def _synthetic_interactions(
    rng: np.random.Generator,
    spec: SyntheticSpec,
    user_seg: np.ndarray,
    item_cat: np.ndarray,
    seg_names: list[str],
    start: float,
    end: float,
) -> Iterator[tuple[int, int, str, float]]:
    """Interactions drawn from ``taste_model``: each user's count from their activity, each
    item from P(item | user); times spread over [start, end) in the user's browsing order."""
    n = spec.interactions
    if n == 0:
        return
    model = taste_model(spec.seed, spec.users, spec.items, user_seg)
    floor = min(MIN_ACTIVITY, n // (2 * spec.users))
    counts = floor + rng.multinomial(n - floor * spec.users, model.activity)
    order_rng = np.random.default_rng([spec.seed, 9])
    names = ("view", "click", "purchase")
    # Blocks of users whose dense (users x items) probabilities stay small (~32 MB).
    step = max(1, 4_000_000 // max(spec.items, 1))
    for lo in range(0, spec.users, step):
        hi = min(lo + step, spec.users)
        block = np.arange(lo, hi)
        per_user = counts[lo:hi]
        users = np.repeat(block, per_user)
        if len(users) == 0:
            continue
        # Each user's items drawn from P(item | user), one search over every row at once
        # (row r's CDF shifted to (r, r + 1]). A user may come back to an item (a second
        # view, a purchase after a click), as shoppers do.
        # In place: one (users x items) array at a time.
        cdf = model.logits(block)
        cdf -= cdf.max(axis=1, keepdims=True)
        np.exp(cdf, out=cdf)
        np.cumsum(cdf, axis=1, out=cdf)
        cdf /= cdf[:, -1:]
        rows = users - lo
        cdf += np.arange(hi - lo)[:, None]
        flat = cdf.ravel()
        found = np.searchsorted(flat, rng.random(len(users)) + rows) - rows * spec.items
        items = np.minimum(found, spec.items - 1).astype(np.int64)
        actions = rng.choice(3, size=len(users), p=_ACTION_P)
        # Times: each user's draws sorted, handed out in their browsing order.
        ts = rng.uniform(start, end, size=len(users))
        key = np.einsum("ij,ij->i", model.item_vectors[items], model.browse[users])
        key = key / (np.std(key) or 1.0) + order_rng.normal(0.0, BROWSING_NOISE, len(users))
        by_key = np.lexsort((key, users))
        by_time = np.lexsort((ts, users))
        ts_sorted = np.empty(len(users))
        ts_sorted[by_key] = ts[by_time]
        yield from zip(
            (users + 1).tolist(),
            (items + 1).tolist(),
            [names[a] for a in actions.tolist()],
            np.round(ts_sorted, 3).tolist(),
            strict=True,
        )


def _synthetic_events(
    rng: np.random.Generator,
    spec: SyntheticSpec,
    exp_id: int,
    is_b: np.ndarray,
    start: float,
) -> Iterator[tuple[Any, ...]]:
    """Impressions with true per-variant click rates, an engagement time per click, and
    conversions: each user converts with the variant's purchase rate (converted / exposed
    users, as ``experiment simulate`` reads it) with one purchase after their first click.

    Impressions are drawn in blocks sized from the expected events per impression until
    exactly ``spec.events`` events have been produced.
    """
    target = spec.events
    if target == 0:
        return
    ctr = np.where(is_b, spec.ctr_b, spec.ctr_a)
    converts = (rng.random(spec.users) < np.where(is_b, spec.purchase_b, spec.purchase_a)).tolist()
    bought_already = [False] * spec.users
    per_imp = 1 + 2 * float(ctr.mean())
    emitted = 0
    while emitted < target:
        # Enough impressions for the remaining events (plus a margin); the loop below stops
        # exactly at the target, and another round covers a rare shortfall.
        m = min(200_000, int((target - emitted) / per_imp * 1.05) + 10)
        users = rng.integers(0, spec.users, size=m)
        items = rng.integers(1, spec.items + 1, size=m)
        ts = np.sort(np.round(rng.uniform(start, start + spec.days * clock.DAY, size=m), 3))
        clicked = rng.random(m) < ctr[users]
        dwell = np.round(rng.lognormal(np.log(np.where(is_b[users], 55.0, 45.0)), 0.6), 2)
        var = np.where(is_b[users], "B", "A")
        u_l, i_l, t_l, v_l = (users + 1).tolist(), items.tolist(), ts.tolist(), var.tolist()
        c_l, d_l = clicked.tolist(), dwell.tolist()
        for k in range(m):
            u, it, t, v = u_l[k], i_l[k], t_l[k], v_l[k]
            session = [(exp_id, v, u, it, "impression", None, t)]
            if c_l[k]:
                session.append((exp_id, v, u, it, "click", None, t + 5))
                session.append((exp_id, v, u, it, "engagement", d_l[k], t + 6))
                if converts[u - 1] and not bought_already[u - 1]:
                    bought_already[u - 1] = True
                    session.append((exp_id, v, u, it, "purchase", None, t + 60))
            # Stop exactly at the requested count (a cut session is still consistent:
            # impression first, then click, engagement, purchase).
            take = min(len(session), target - emitted)
            yield from session[:take]
            emitted += take
            if emitted >= target:
                return
