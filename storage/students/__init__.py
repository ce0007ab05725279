"""Per-student rolling state: the StudentStore interface and its implementations."""
from storage.students.base import Commit, Document, FlowRecord, StudentStore
from storage.students.memory import InMemoryStudentStore
from storage.students.redis import RedisStudentStore

__all__ = ["Commit", "Document", "FlowRecord", "InMemoryStudentStore", "RedisStudentStore", "StudentStore"]
