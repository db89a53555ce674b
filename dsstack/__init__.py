"""dsstack: a layered, per-team data-science platform on AWS, provisioned by AWS CDK from one config file."""

__version__ = "0.1.0"
