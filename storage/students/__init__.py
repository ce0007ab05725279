"""Per-student rolling state: the StudentStore interface and its implementations."""
from storage.students.base import Commit, Document, FlowRecord, Forgotten, StudentStore
from storage.students.memory import InMemoryStudentStore
from storage.students.redis import RedisStudentStore

__all__ = ["Commit", "Document", "FlowRecord", "Forgotten", "InMemoryStudentStore", "RedisStudentStore", "StudentStore"]
