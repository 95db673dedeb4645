"""What a phase's submissions scored, and the phase leaderboard (SPEC §12).

Nothing is scored here: a live submission's figures are its run service's, kept by the
runs (gateway.runs.live_scores while it runs, the full rescore stored when it ends), on
the part of the images asked for — `public`, `private` (a split run's parts:
`live_score_parts`, `run_services.part_scores`) or `all`. A run that is not split has
every image public and private alike: each part is all of it.

The leaderboard has one row per enrolled team: its counting submission (`best`: the
highest on the phase's metric, ties to the earlier; `last`: the latest; `selected`: the
best of those it selected, or of all when it selected none), the submissions it made
and has left, the time of its last. Teams rank by the counting submission's metric,
ties to the earlier submission; baselines are shown among them, never ranked.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from gateway.challenges.models import Challenge, ChallengePhase, Counts, Submission
from gateway.challenges.submissions import allowance
from gateway.db import chunked
from gateway.registry.models import Provider, Service
from gateway.runs import live_scores
from gateway.runs.models import FINAL_STATUSES, Run, RunService

PartName = Literal["public", "private", "all"]


@dataclass(frozen=True, slots=True)
class Scored:
    """A submission with its run service's figures on one part."""

    submission: Submission
    status: str | None
    done: int
    total: int
    scores: dict[str, Any] | None  # the Scores fields; None before anything is known

    def value(self, metric: str) -> float | None:
        if self.scores is None:
            return None
        found = self.scores.get(metric)
        return float(found) if found is not None else None


def score_submissions(
    session: Session, submissions: Sequence[Submission], *, part: PartName
) -> dict[int, Scored]:
    """The figures of each live submission on `part`, by submission id, read from the
    live scores or the stored rescore (one query per table, whatever the results)."""
    keys = [(s.run_id, s.service_id) for s in submissions if s.run_id and s.service_id]
    members: dict[tuple[int, int], Any] = {}
    for chunk in chunked(keys):
        for row in session.execute(
            select(
                RunService.id,
                RunService.run_id,
                RunService.service_id,
                RunService.status,
                RunService.scores,
                RunService.part_scores,
                Run.split_seed,
                Run.public_fraction,
            )
            .join(Run, Run.id == RunService.run_id)
            .where(tuple_(RunService.run_id, RunService.service_id).in_(list(chunk)))
        ):
            members[row.run_id, row.service_id] = row
    ids = [m.id for m in members.values()]
    conn = session.connection()
    whole = live_scores.read_rows(conn, run_service_ids=ids)
    parted = (
        live_scores.read_part_rows(conn, run_service_ids=ids, part=part) if part != "all" else {}
    )
    found: dict[int, Scored] = {}
    for sub in submissions:
        member = members.get((sub.run_id or 0, sub.service_id or 0))
        if member is None:
            found[sub.id] = Scored(sub, None, 0, 0, None)
            continue
        split = member.split_seed is not None and (member.public_fraction or 1.0) < 1.0
        final = member.status in FINAL_STATUSES and bool(member.scores)
        stored = whole.get(member.id)
        done = stored.tally.images if stored else 0
        total = stored.images_total if stored else 0
        scores: dict[str, Any] | None
        shown: PartName = part if split else "all"
        if split and part != "all":
            live = parted.get(member.id)
            if final and member.part_scores:
                scores = dict(member.part_scores[part])
            else:
                scores = live.tally.result() if live is not None else None
        else:
            scores = dict(member.scores) if final else (stored.tally.result() if stored else None)
        if final and member.scores:
            done = int(member.scores.get("images", done))
        if scores is not None:
            scores = {**scores, "part": shown, "provisional": not final}
        found[sub.id] = Scored(sub, member.status, done, total, scores)
    return found


def counting(scored: Sequence[Scored], *, counts: str, metric: str) -> Scored | None:
    """The submission that counts among one team's, by the phase's rule."""
    if not scored:
        return None
    if counts == Counts.LAST:
        return max(scored, key=lambda s: (s.submission.created_at, s.submission.id))
    pool = list(scored)
    if counts == Counts.SELECTED:
        pool = [s for s in scored if s.submission.selected] or pool
    return min(pool, key=lambda s: _order(s, metric))


def _order(s: Scored, metric: str) -> tuple[bool, float, datetime, int]:
    value = s.value(metric)
    return (value is None, -(value or 0.0), s.submission.created_at, s.submission.id)


def team_ids(session: Session, challenge: Challenge, phase: ChallengePhase) -> list[int]:
    """The enrolled teams, without the providers of the phase's baselines (the
    organizer's own)."""
    baseline_owners = set(
        session.scalars(
            select(Service.provider_id).where(Service.guid.in_(list(phase.baselines or ())))
        )
    )
    if challenge.all_providers:
        ids = list(session.scalars(select(Provider.id).order_by(Provider.id)))
    else:
        ids = [e.provider_id for e in challenge.enrolled]
    return [i for i in ids if i not in baseline_owners]


def leaderboard_rows(
    session: Session, *, challenge: Challenge, phase: ChallengePhase, part: PartName
) -> list[dict[str, Any]]:
    """The phase leaderboard on `part`, best first (PhaseLeaderboardRow fields)."""
    submissions = list(session.scalars(select(Submission).where(Submission.phase_id == phase.id)))
    scored = score_submissions(session, submissions, part=part)
    names = dict(session.execute(select(Provider.id, Provider.name)).all())
    guids = dict(session.execute(select(Provider.id, Provider.guid)).all())
    services = {
        s.id: s
        for s in session.scalars(
            select(Service).where(
                Service.id.in_({x.service_id for x in submissions if x.service_id})
            )
        )
    }
    baseline_ids = {s.id for s in services.values() if s.guid in set(phase.baselines or ())}
    by_team: dict[int, list[Scored]] = defaultdict(list)
    by_baseline: dict[int, list[Scored]] = defaultdict(list)
    for sub in submissions:
        if sub.service_id in baseline_ids:
            by_baseline[sub.service_id or 0].append(scored[sub.id])
        else:
            by_team[sub.provider_id].append(scored[sub.id])
    entries: list[tuple[bool, Scored | None, dict[str, Any]]] = []
    for provider_id in team_ids(session, challenge, phase):
        mine = by_team.get(provider_id, [])
        chosen = counting(mine, counts=phase.counts, metric=phase.metric)
        have = allowance(session, phase=phase, provider_id=provider_id)
        entries.append(
            (
                False,
                chosen,
                _row(
                    chosen,
                    names[provider_id],
                    guids[provider_id],
                    services,
                    have.made,
                    have.left,
                    have.last_at,
                ),
            )
        )
    for service_id, mine in sorted(by_baseline.items()):
        chosen = counting(mine, counts=Counts.BEST, metric=phase.metric)
        provider_id = services[service_id].provider_id
        last = max(s.submission.created_at for s in mine)
        entries.append(
            (
                True,
                chosen,
                _row(
                    chosen, names[provider_id], guids[provider_id], services, len(mine), None, last
                ),
            )
        )
    entries.sort(key=lambda e: _order(e[1], phase.metric) if e[1] else (True, 0.0, datetime.max, 0))
    rows = []
    rank = 0
    for baseline, chosen, row in entries:
        ranked = not baseline and chosen is not None and chosen.value(phase.metric) is not None
        if ranked:
            rank += 1
        rows.append({**row, "rank": rank if ranked else None, "baseline": baseline})
    return rows


def _row(
    chosen: Scored | None,
    provider_name: str,
    provider_guid: str,
    services: dict[int, Service],
    made: int,
    left: int | None,
    last_at: datetime | None,
) -> dict[str, Any]:
    service = services.get(chosen.submission.service_id or 0) if chosen else None
    return {
        "provider_guid": provider_guid,
        "provider_name": provider_name,
        "service_guid": service.guid if service else None,
        "service_name": service.name if service else None,
        "submission_id": chosen.submission.id if chosen else None,
        "submitted_at": chosen.submission.created_at if chosen else None,
        "submissions": made,
        "submissions_left": left,
        "last_submission_at": last_at,
        "scores": chosen.scores if chosen else None,
    }
