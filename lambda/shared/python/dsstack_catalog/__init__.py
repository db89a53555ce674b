"""dsstack's catalog of versions: object versions, numbered model versions, runs and promotions.

Pure Python on top of boto3, shipped to the Lambda functions as a layer (lambda/shared/python) and installed
into the project's virtualenv, so the functions, the CLI and model promotion share one key design.
"""

from .catalog import (
    Catalog,
    CatalogError,
    NumberingContentionError,
    PromotionConflictError,
    UnknownModelVersionError,
)
from .layout import KeyAttribution, ObjectKind, attribute_key, is_cataloged
from .records import (
    RUN_STATUSES,
    TERMINAL_RUN_STATUSES,
    ModelVersion,
    ObjectVersion,
    Promotion,
    RegisteredModelVersion,
    RunRecord,
)

__all__ = [
    "RUN_STATUSES",
    "TERMINAL_RUN_STATUSES",
    "Catalog",
    "CatalogError",
    "KeyAttribution",
    "ModelVersion",
    "NumberingContentionError",
    "ObjectKind",
    "ObjectVersion",
    "Promotion",
    "PromotionConflictError",
    "RegisteredModelVersion",
    "RunRecord",
    "UnknownModelVersionError",
    "attribute_key",
    "is_cataloged",
]
