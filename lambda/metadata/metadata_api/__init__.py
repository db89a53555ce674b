"""Serverless Metaflow metadata service: API Gateway (REST, proxy) -> Lambda -> one DynamoDB table.

Lambda handler: `metadata_api.handler.handler`. Key design: docs/metadata.md.
"""
