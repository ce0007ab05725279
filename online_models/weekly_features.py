"""Each student's features at the end of every course week, kept in Redis until their label arrives.

The worker writes them (through online_models.scoring) as course weeks end; the trainer reads
them when the student's outcome comes and deletes them in the transaction that publishes the
model version that learned them. Until then it also samples them to refit the surrogate
(online_models.surrogate), which learns from the enrolments still running.
"""
from __future__ import annotations

import json
import random
from collections.abc import Collection, Container, Iterator

import redis

from features.eventtime import DAY
from streams.settings import redis_literal, redis_text

#: Weekly features of students whose label never arrives expire instead of piling up.
TTL_SECONDS = int(400 * DAY)
#: Learners a `sample` reads per round trip.
SAMPLE_CHUNK = 200
#: Keys one DEL of `forget` takes.
DELETE_CHUNK = 1000


class WeeklyFeatureStore:
    """One Redis hash per learner (an enrolment: "user:course:flow"): field = course week, value =
    that week's model input (JSON). Writing the same week again overwrites it, so replays and
    redeliveries are harmless."""

    def __init__(self, redis_client: redis.Redis, prefix: str = "") -> None:
        self._redis = redis_client
        self._prefix = f"{prefix}weeks:"

    def key(self, learner: str) -> str:
        return f"{self._prefix}{learner}"

    def put_many(self, items: list[tuple[str, int, dict[str, float]]]) -> None:
        """(learner, week, x) triples in one round trip."""
        if not items:
            return
        pipe = self._redis.pipeline(transaction=False)
        for learner, week, x in items:
            pipe.hset(self.key(learner), str(week), json.dumps(x))
            pipe.expire(self.key(learner), TTL_SECONDS)
        pipe.execute()

    def read_all(self, learner: str) -> dict[int, dict[str, float]]:
        """A student's features by course week, ascending; left in place until a version has learned them."""
        raw = self._redis.hgetall(self.key(learner))
        return {int(week): json.loads(x) for week, x in sorted(raw.items(), key=lambda item: int(item[0]))}

    def of_students(self, user_ids: Collection[int]) -> dict[int, dict[str, dict[int, dict[str, float]]]]:
        """The stored weeks of every enrolment of each student, by learner (what a request to see their data
        shows)."""
        return {user_id: {learner: self.read_all(learner) for learner in learners}
                for user_id, learners in self._learners_of(user_ids).items()}

    def forget(self, user_ids: Collection[int], dry_run: bool = False) -> dict[int, int]:
        """Delete the stored weeks of every enrolment of the students; per student, how many enrolments had some."""
        learners = self._learners_of(user_ids)
        doomed = [self.key(learner) for mine in learners.values() for learner in mine]
        if not dry_run:
            for start in range(0, len(doomed), DELETE_CHUNK):
                self._redis.delete(*doomed[start:start + DELETE_CHUNK])
        return {user_id: len(mine) for user_id, mine in learners.items()}

    def _learners_of(self, user_ids: Collection[int]) -> dict[int, list[str]]:
        """Each student's learners with stored weeks, in one pass over the keyspace whatever their number."""
        wanted = {str(user_id): user_id for user_id in user_ids}
        if len(wanted) == 1:  # one student: let Redis match the keys
            match = f"{redis_literal(self.key(next(iter(wanted))))}:*"
        else:
            match = f"{redis_literal(self._prefix)}*"
        found: dict[int, list[str]] = {user_id: [] for user_id in wanted.values()}
        for raw_key in self._redis.scan_iter(match=match, count=1000):
            learner = redis_text(raw_key)[len(self._prefix):]
            if (user_id := wanted.get(learner.split(":", 1)[0])) is not None:
                found[user_id].append(learner)
        return {user_id: sorted(learners) for user_id, learners in found.items()}

    def sample(self, limit: int, skip: Container[str] = frozenset()) -> Iterator[dict[int, dict[str, float]]]:
        """The snapshots of up to `limit` learners not in `skip`, drawn uniformly (a reservoir over one SCAN
        of the keyspace, so memory stays bounded by `limit`): what the surrogate is refit on.

        Read SAMPLE_CHUNK learners a round trip and decoded one at a time as the caller iterates, so each
        learner's snapshots can be freed once used: parsing one reply of 3,000 learners, and freeing their
        27,000 decoded weeks at once, each held the GIL (and a worker's event loop) for tens of ms."""
        chosen: list[str] = []
        seen = 0
        rng = random.Random()
        for raw_key in self._redis.scan_iter(match=f"{redis_literal(self._prefix)}*", count=1000):
            key = redis_text(raw_key)
            if key[len(self._prefix):] in skip:
                continue
            seen += 1
            if len(chosen) < limit:
                chosen.append(key)
            elif (slot := rng.randrange(seen)) < limit:
                chosen[slot] = key
        for start in range(0, len(chosen), SAMPLE_CHUNK):
            pipe = self._redis.pipeline(transaction=False)
            for key in chosen[start:start + SAMPLE_CHUNK]:
                pipe.hgetall(key)
            replies = pipe.execute()
            while replies:
                if raw := replies.pop():
                    yield {int(week): json.loads(x) for week, x in raw.items()}
