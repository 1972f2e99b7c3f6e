from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExternalServiceConfig(_message.Message):
    __slots__ = ("name", "base_url", "headers", "timeout_ms", "rate_limit_per_second", "auth_secret_ref")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    AUTH_SECRET_REF_FIELD_NUMBER: _ClassVar[int]
    name: str
    base_url: str
    headers: _containers.ScalarMap[str, str]
    timeout_ms: int
    rate_limit_per_second: int
    auth_secret_ref: str
    def __init__(self, name: _Optional[str] = ..., base_url: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., timeout_ms: _Optional[int] = ..., rate_limit_per_second: _Optional[int] = ..., auth_secret_ref: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("service_id", "operation", "params")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    service_id: str
    operation: str
    params: _struct_pb2.Struct
    def __init__(self, service_id: _Optional[str] = ..., operation: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CallExternalServiceResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _struct_pb2.Value
    def __init__(self, result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

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
