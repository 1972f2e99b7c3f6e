import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
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
    __slots__ = ("event", "url", "secret", "secret_ref", "description", "max_attempts")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    SECRET_REF_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    event: str
    url: str
    secret: str
    secret_ref: str
    description: str
    max_attempts: int
    def __init__(self, event: _Optional[str] = ..., url: _Optional[str] = ..., secret: _Optional[str] = ..., secret_ref: _Optional[str] = ..., description: _Optional[str] = ..., max_attempts: _Optional[int] = ...) -> None: ...

class RegisterWebhookResponse(_message.Message):
    __slots__ = ("webhook_id", "webhook")
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    webhook: Webhook
    def __init__(self, webhook_id: _Optional[str] = ..., webhook: _Optional[_Union[Webhook, _Mapping]] = ...) -> None: ...

class Webhook(_message.Message):
    __slots__ = ("webhook_id", "event", "url", "secret_ref", "has_secret", "description", "max_attempts", "created", "pending", "dead_letters", "delivered", "last_error", "namespace")
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SECRET_REF_FIELD_NUMBER: _ClassVar[int]
    HAS_SECRET_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    event: str
    url: str
    secret_ref: str
    has_secret: bool
    description: str
    max_attempts: int
    created: _timestamp_pb2.Timestamp
    pending: int
    dead_letters: int
    delivered: int
    last_error: str
    namespace: str
    def __init__(self, webhook_id: _Optional[str] = ..., event: _Optional[str] = ..., url: _Optional[str] = ..., secret_ref: _Optional[str] = ..., has_secret: _Optional[bool] = ..., description: _Optional[str] = ..., max_attempts: _Optional[int] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pending: _Optional[int] = ..., dead_letters: _Optional[int] = ..., delivered: _Optional[int] = ..., last_error: _Optional[str] = ..., namespace: _Optional[str] = ...) -> None: ...

class GetWebhookRequest(_message.Message):
    __slots__ = ("webhook_id",)
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    def __init__(self, webhook_id: _Optional[str] = ...) -> None: ...

class GetWebhookResponse(_message.Message):
    __slots__ = ("webhook",)
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    webhook: Webhook
    def __init__(self, webhook: _Optional[_Union[Webhook, _Mapping]] = ...) -> None: ...

class ListWebhooksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWebhooksResponse(_message.Message):
    __slots__ = ("webhooks",)
    WEBHOOKS_FIELD_NUMBER: _ClassVar[int]
    webhooks: _containers.RepeatedCompositeFieldContainer[Webhook]
    def __init__(self, webhooks: _Optional[_Iterable[_Union[Webhook, _Mapping]]] = ...) -> None: ...

class DeleteWebhookRequest(_message.Message):
    __slots__ = ("webhook_id",)
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    def __init__(self, webhook_id: _Optional[str] = ...) -> None: ...

class DeleteWebhookResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("delivery_id", "webhook_id", "event_type", "position", "attempts", "last_error", "failed_at", "body")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    FAILED_AT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    webhook_id: str
    event_type: str
    position: int
    attempts: int
    last_error: str
    failed_at: _timestamp_pb2.Timestamp
    body: _struct_pb2.Struct
    def __init__(self, delivery_id: _Optional[str] = ..., webhook_id: _Optional[str] = ..., event_type: _Optional[str] = ..., position: _Optional[int] = ..., attempts: _Optional[int] = ..., last_error: _Optional[str] = ..., failed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., body: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ListDeadLettersRequest(_message.Message):
    __slots__ = ("webhook_id",)
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    def __init__(self, webhook_id: _Optional[str] = ...) -> None: ...

class ListDeadLettersResponse(_message.Message):
    __slots__ = ("dead_letters",)
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    dead_letters: _containers.RepeatedCompositeFieldContainer[DeadLetter]
    def __init__(self, dead_letters: _Optional[_Iterable[_Union[DeadLetter, _Mapping]]] = ...) -> None: ...

class RedeliverDeadLettersRequest(_message.Message):
    __slots__ = ("webhook_id", "delivery_ids")
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_IDS_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    delivery_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, webhook_id: _Optional[str] = ..., delivery_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RedeliverDeadLettersResponse(_message.Message):
    __slots__ = ("redelivered",)
    REDELIVERED_FIELD_NUMBER: _ClassVar[int]
    redelivered: int
    def __init__(self, redelivered: _Optional[int] = ...) -> None: ...

class TriggerEventRequest(_message.Message):
    __slots__ = ("event", "payload", "correlation_key", "event_id")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_KEY_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event: str
    payload: _struct_pb2.Struct
    correlation_key: str
    event_id: str
    def __init__(self, event: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., correlation_key: _Optional[str] = ..., event_id: _Optional[str] = ...) -> None: ...

class TriggerEventResponse(_message.Message):
    __slots__ = ("delivered", "started", "refused")
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    delivered: int
    started: _containers.RepeatedScalarFieldContainer[str]
    refused: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, delivered: _Optional[int] = ..., started: _Optional[_Iterable[str]] = ..., refused: _Optional[_Iterable[str]] = ...) -> None: ...

class ListTriggersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Trigger(_message.Message):
    __slots__ = ("workflow", "index", "event", "filter", "cron", "missed", "next_fire")
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    MISSED_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIRE_FIELD_NUMBER: _ClassVar[int]
    workflow: str
    index: int
    event: str
    filter: str
    cron: str
    missed: str
    next_fire: _timestamp_pb2.Timestamp
    def __init__(self, workflow: _Optional[str] = ..., index: _Optional[int] = ..., event: _Optional[str] = ..., filter: _Optional[str] = ..., cron: _Optional[str] = ..., missed: _Optional[str] = ..., next_fire: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListTriggersResponse(_message.Message):
    __slots__ = ("triggers",)
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    triggers: _containers.RepeatedCompositeFieldContainer[Trigger]
    def __init__(self, triggers: _Optional[_Iterable[_Union[Trigger, _Mapping]]] = ...) -> None: ...
