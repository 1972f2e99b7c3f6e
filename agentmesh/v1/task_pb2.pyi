from agentmesh.v1 import types_pb2 as _types_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AssignTaskRequest(_message.Message):
    __slots__ = ("agent_id", "task", "wait_for_agent")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    WAIT_FOR_AGENT_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    task: _types_pb2.Task
    wait_for_agent: bool
    def __init__(self, agent_id: _Optional[str] = ..., task: _Optional[_Union[_types_pb2.Task, _Mapping]] = ..., wait_for_agent: _Optional[bool] = ...) -> None: ...

class BulkAssignTasksRequest(_message.Message):
    __slots__ = ("tasks", "wait_for_agent")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    WAIT_FOR_AGENT_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[_types_pb2.Task]
    wait_for_agent: bool
    def __init__(self, tasks: _Optional[_Iterable[_Union[_types_pb2.Task, _Mapping]]] = ..., wait_for_agent: _Optional[bool] = ...) -> None: ...

class BulkAssignTasksResponse(_message.Message):
    __slots__ = ("assignments",)
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    assignments: _containers.RepeatedCompositeFieldContainer[_types_pb2.TaskAssignment]
    def __init__(self, assignments: _Optional[_Iterable[_Union[_types_pb2.TaskAssignment, _Mapping]]] = ...) -> None: ...

class GetTaskStatusRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class WaitTaskRequest(_message.Message):
    __slots__ = ("task_id", "timeout_ms")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    timeout_ms: int
    def __init__(self, task_id: _Optional[str] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class WaitTasksRequest(_message.Message):
    __slots__ = ("task_ids", "timeout_ms")
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    timeout_ms: int
    def __init__(self, task_ids: _Optional[_Iterable[str]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class WaitTasksResponse(_message.Message):
    __slots__ = ("finished",)
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    finished: _containers.RepeatedCompositeFieldContainer[_types_pb2.TaskAssignment]
    def __init__(self, finished: _Optional[_Iterable[_Union[_types_pb2.TaskAssignment, _Mapping]]] = ...) -> None: ...

class RunTaskRequest(_message.Message):
    __slots__ = ("agent_id", "task", "wait_for_agent", "timeout_ms")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    WAIT_FOR_AGENT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    task: _types_pb2.Task
    wait_for_agent: bool
    timeout_ms: int
    def __init__(self, agent_id: _Optional[str] = ..., task: _Optional[_Union[_types_pb2.Task, _Mapping]] = ..., wait_for_agent: _Optional[bool] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("status", "agent_id", "limit")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    status: _types_pb2.TaskStatus
    agent_id: str
    limit: int
    def __init__(self, status: _Optional[_Union[_types_pb2.TaskStatus, str]] = ..., agent_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[_types_pb2.TaskAssignment]
    def __init__(self, tasks: _Optional[_Iterable[_Union[_types_pb2.TaskAssignment, _Mapping]]] = ...) -> None: ...

class CompleteTaskRequest(_message.Message):
    __slots__ = ("task_id", "result", "attempt")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    result: _struct_pb2.Value
    attempt: int
    def __init__(self, task_id: _Optional[str] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., attempt: _Optional[int] = ...) -> None: ...

class FailTaskRequest(_message.Message):
    __slots__ = ("task_id", "error", "attempt")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    error: _types_pb2.TaskError
    attempt: int
    def __init__(self, task_id: _Optional[str] = ..., error: _Optional[_Union[_types_pb2.TaskError, _Mapping]] = ..., attempt: _Optional[int] = ...) -> None: ...

class CompleteTaskResponse(_message.Message):
    __slots__ = ("recorded", "status")
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    recorded: bool
    status: _types_pb2.TaskStatus
    def __init__(self, recorded: _Optional[bool] = ..., status: _Optional[_Union[_types_pb2.TaskStatus, str]] = ...) -> None: ...

class FailTaskResponse(_message.Message):
    __slots__ = ("recorded", "status")
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    recorded: bool
    status: _types_pb2.TaskStatus
    def __init__(self, recorded: _Optional[bool] = ..., status: _Optional[_Union[_types_pb2.TaskStatus, str]] = ...) -> None: ...

class CancelTaskRequest(_message.Message):
    __slots__ = ("task_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PollTasksRequest(_message.Message):
    __slots__ = ("agent_id", "max_tasks", "wait_ms", "session_secret")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_TASKS_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    SESSION_SECRET_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    max_tasks: int
    wait_ms: int
    session_secret: str
    def __init__(self, agent_id: _Optional[str] = ..., max_tasks: _Optional[int] = ..., wait_ms: _Optional[int] = ..., session_secret: _Optional[str] = ...) -> None: ...

class PollTasksResponse(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[_types_pb2.TaskAssignment]
    def __init__(self, tasks: _Optional[_Iterable[_Union[_types_pb2.TaskAssignment, _Mapping]]] = ...) -> None: ...
