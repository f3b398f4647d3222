from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts.services import authenticate_api_key


def bearer_token(request):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <key>``: the key's API-client user, a doctor of the key's hospital."""

    def authenticate(self, request):
        token = bearer_token(request)
        if token is None:
            return None
        user = authenticate_api_key(token)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return user, None

    def authenticate_header(self, request):
        return 'Bearer realm="radassist"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes the API key to the OpenAPI schema (and the Swagger page's Authorize button)."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A hospital API key: `Bearer <key>`."}
