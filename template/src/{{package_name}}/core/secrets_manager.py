"""Settings from AWS Secrets Manager: one secret, a JSON object keyed like the variables.

Off unless AWS_SECRETS_MANAGER_SECRET_ID names a secret. It needs the `aws` extra (boto3), which
a project that never turns it on does not install; credentials and the endpoint come from boto3's
own chain (AWS_ACCESS_KEY_ID or a role, AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS, ...). The secret is
read once per settings object, so a rotated value is picked up when the service restarts.
"""

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import (
    AWSSecretsManagerSettingsSource,
    BaseSettings,
    PydanticBaseSettingsSource,
)

INSTALL_COMMAND = "uv sync --extra aws"
EXAMPLE = '{"DATABASE_PASSWORD": "..."}'


def secrets_manager_source(
    settings_cls: type[BaseSettings], secret_id: str, region: str | None
) -> PydanticBaseSettingsSource:
    """Read the secret now; a failure is a settings error naming the variable, never a value."""
    try:
        # Keys match whatever their case, as the environment's do.
        return AWSSecretsManagerSettingsSource(
            settings_cls, secret_id, region_name=region, case_sensitive=False
        )
    except ImportError:
        reason = f"AWS Secrets Manager needs the aws extra (boto3): run `{INSTALL_COMMAND}`"
        raise settings_error("aws_secrets_manager_secret_id", reason) from None
    except Exception as error:  # boto3's own (no credentials, no such secret), or the content's
        if type(error).__name__ == "NoRegionError":
            reason = "no region for AWS Secrets Manager: set it to the secret's region"
            raise settings_error("aws_region", reason) from None
        if type(error).__module__.partition(".")[0] != "botocore":
            # The content failed to parse: its error may quote it, so it is never shown.
            reason = f"the secret holds no JSON object of settings, such as {EXAMPLE}"
            raise settings_error("aws_secrets_manager_secret_id", reason) from None
        first_line = str(error).partition("\n")[0]
        reason = f"cannot read the secret from AWS Secrets Manager: {first_line}"
        raise settings_error("aws_secrets_manager_secret_id", reason) from None


def settings_error(field: str, reason: str) -> ValidationError:
    """A validation error of the settings, as an invalid variable gives, at `field`."""
    details = InitErrorDetails(
        type=PydanticCustomError("secrets_manager", "{reason}", {"reason": reason}),
        loc=(field,),
        input=None,  # never the secret's id or content
    )
    return ValidationError.from_exception_data("Settings", [details])
