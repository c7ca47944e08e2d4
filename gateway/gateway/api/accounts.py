"""API.md "Conventions" (auth) and "Org, users, targets" (users; API keys for integrations)."""
from gateway import accounts, auth
from gateway.auth import ADMIN, EVERYONE
from gateway.http import Reply, api, plain
from gateway.schemas import (
    ApiKeyCreate, ApiKeyCreated, ApiKeyPage, MeOut, PageQuery, TokenOut, TokenRequest, UserCreate, UserOut,
    UserPage,
)

API = "/api/v1"


class AccountsApi:
    @api("POST", f"{API}/auth/token", body=TokenRequest, response=TokenOut, tags=["auth"], errors=(401,))
    def issue_token(self, call):
        """Log in: a bearer token for a username and password."""
        return auth.login(self.db, self.security, call.body["username"], call.body["password"])

    @api("GET", f"{API}/me", roles=EVERYONE, response=MeOut, tags=["auth"])
    def me(self, call):
        """Who the credential belongs to."""
        return accounts.me(call.principal)

    @api("POST", f"{API}/users", roles=ADMIN, body=UserCreate, response=UserOut, status=201, tags=["users"],
         errors=(503, 504))
    def create_user(self, call):
        """Create a user: a staff member in the org chart and their login."""
        return Reply(accounts.create_user(self.db, self.customer, call, plain(call.body)), status=201)

    @api("GET", f"{API}/users", roles=ADMIN, query=PageQuery, response=UserPage, tags=["users"])
    def list_users(self, call):
        """List the users (logins)."""
        return accounts.list_credentials(self.db, "password", call.query, accounts.user_out)

    @api("POST", f"{API}/api-keys", roles=ADMIN, body=ApiKeyCreate, response=ApiKeyCreated, status=201,
         tags=["users"], errors=(503, 504), secret_fields=("key",))
    def create_api_key(self, call):
        """Create an API key for an integration; the key is shown in this answer only."""
        return Reply(accounts.create_api_key(self.db, self.customer, call, call.body), status=201)

    @api("GET", f"{API}/api-keys", roles=ADMIN, query=PageQuery, response=ApiKeyPage, tags=["users"])
    def list_api_keys(self, call):
        """List the API keys (never the keys themselves)."""
        return accounts.list_credentials(self.db, "api_key", call.query, accounts.api_key_out)
