"""Storage adapters: `students` (per-student state: Redis, or memory for tests) and `postgres`
(the snapshot tables analysts and the read API use, with their migrations)."""
