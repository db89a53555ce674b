"""The embedded AWS emulator: moto (pinned, patched) + the real CDK CLI, no AWS account, no Docker.

    python -m dsstack.local up|down|status|deploy|destroy [--config PATH]

Public functions (for dsstack.cli and tests):
    dsstack.local.emulator.up() / down() / status()          -> the emulator process
    dsstack.local.deploy.deploy(config_path, target)          -> bootstrap + deploy + verify + summary
    dsstack.local.deploy.destroy(config_path, target)         -> cdk destroy --all
    dsstack.local.verify.verify_deployment(assembly, session) -> the post-deploy check
See docs/emulator.md.
"""
