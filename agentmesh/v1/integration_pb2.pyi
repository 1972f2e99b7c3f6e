from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExternalServiceConfig(_message.Message):
    __slots__ = ("name", "base_url", "headers", "timeout_ms", "rate_limit_per_second", "auth_secret_ref", "auth_scheme", "rate_limit_burst", "max_attempts", "backoff_ms", "max_backoff_ms", "breaker_failures", "breaker_open_ms", "cache_ttl_ms", "cache_entries", "operations")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class OperationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ExternalOperation
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ExternalOperation, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    AUTH_SECRET_REF_FIELD_NUMBER: _ClassVar[int]
    AUTH_SCHEME_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_BURST_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_BACKOFF_MS_FIELD_NUMBER: _ClassVar[int]
    BREAKER_FAILURES_FIELD_NUMBER: _ClassVar[int]
    BREAKER_OPEN_MS_FIELD_NUMBER: _ClassVar[int]
    CACHE_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    CACHE_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    base_url: str
    headers: _containers.ScalarMap[str, str]
    timeout_ms: int
    rate_limit_per_second: int
    auth_secret_ref: str
    auth_scheme: str
    rate_limit_burst: int
    max_attempts: int
    backoff_ms: int
    max_backoff_ms: int
    breaker_failures: int
    breaker_open_ms: int
    cache_ttl_ms: int
    cache_entries: int
    operations: _containers.MessageMap[str, ExternalOperation]
    def __init__(self, name: _Optional[str] = ..., base_url: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., timeout_ms: _Optional[int] = ..., rate_limit_per_second: _Optional[int] = ..., auth_secret_ref: _Optional[str] = ..., auth_scheme: _Optional[str] = ..., rate_limit_burst: _Optional[int] = ..., max_attempts: _Optional[int] = ..., backoff_ms: _Optional[int] = ..., max_backoff_ms: _Optional[int] = ..., breaker_failures: _Optional[int] = ..., breaker_open_ms: _Optional[int] = ..., cache_ttl_ms: _Optional[int] = ..., cache_entries: _Optional[int] = ..., operations: _Optional[_Mapping[str, ExternalOperation]] = ...) -> None: ...

class ExternalOperation(_message.Message):
    __slots__ = ("method", "path")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    method: str
    path: str
    def __init__(self, method: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class ExternalServiceInfo(_message.Message):
    __slots__ = ("config", "breaker_state", "calls", "cache_hits", "cache_misses")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    BREAKER_STATE_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    CACHE_MISSES_FIELD_NUMBER: _ClassVar[int]
    config: ExternalServiceConfig
    breaker_state: str
    calls: int
    cache_hits: int
    cache_misses: int
    def __init__(self, config: _Optional[_Union[ExternalServiceConfig, _Mapping]] = ..., breaker_state: _Optional[str] = ..., calls: _Optional[int] = ..., cache_hits: _Optional[int] = ..., cache_misses: _Optional[int] = ...) -> None: ...

class GetExternalServiceRequest(_message.Message):
    __slots__ = ("service_id",)
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    service_id: str
    def __init__(self, service_id: _Optional[str] = ...) -> None: ...

class GetExternalServiceResponse(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: ExternalServiceInfo
    def __init__(self, service: _Optional[_Union[ExternalServiceInfo, _Mapping]] = ...) -> None: ...

class ListExternalServicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListExternalServicesResponse(_message.Message):
    __slots__ = ("services",)
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[ExternalServiceInfo]
    def __init__(self, services: _Optional[_Iterable[_Union[ExternalServiceInfo, _Mapping]]] = ...) -> None: ...

class DeleteExternalServiceRequest(_message.Message):
    __slots__ = ("service_id",)
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    service_id: str
    def __init__(self, service_id: _Optional[str] = ...) -> None: ...

class DeleteExternalServiceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RegisterExternalServiceRequest(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: ExternalServiceConfig
    def __init__(self, service: _Optional[_Union[ExternalServiceConfig, _Mapping]] = ...) -> None: ...

class RegisterExternalServiceResponse(_message.Message):
    __slots__ = ("service_id",)
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    service_id: str
    def __init__(self, service_id: _Optional[str] = ...) -> None: ...

class CallExternalServiceRequest(_message.Message):
    __slots__ = ("service_id", "operation", "params", "timeout_ms")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    service_id: str
    operation: str
    params: _struct_pb2.Struct
    timeout_ms: int
    def __init__(self, service_id: _Optional[str] = ..., operation: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class CallExternalServiceResponse(_message.Message):
    __slots__ = ("result", "http_status", "cached", "attempts")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    result: _struct_pb2.Value
    http_status: int
    cached: bool
    attempts: int
    def __init__(self, result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., http_status: _Optional[int] = ..., cached: _Optional[bool] = ..., attempts: _Optional[int] = ...) -> None: ...

class RegisterWebhookRequest(_message.Message):
    __slots__ = ("event", "url", "secret")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    event: str
    url: str
    secret: str
    def __init__(self, event: _Optional[str] = ..., url: _Optional[str] = ..., secret: _Optional[str] = ...) -> None: ...

class RegisterWebhookResponse(_message.Message):
    __slots__ = ("webhook_id",)
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    def __init__(self, webhook_id: _Optional[str] = ...) -> None: ...

class TriggerEventRequest(_message.Message):
    __slots__ = ("event", "payload", "correlation_key")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_KEY_FIELD_NUMBER: _ClassVar[int]
    event: str
    payload: _struct_pb2.Struct
    correlation_key: str
    def __init__(self, event: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., correlation_key: _Optional[str] = ...) -> None: ...

class TriggerEventResponse(_message.Message):
    __slots__ = ("delivered",)
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    delivered: int
    def __init__(self, delivered: _Optional[int] = ...) -> None: ...
