"""The connect page's words, in English and French, and which language a request gets.

`lang` in the page's query (what `openConnectUI({ lang })` sends) wins, then the browser's
Accept-Language, then English. `{name}` and `{detail}` are filled in by the page's script.
"""

from __future__ import annotations

EN = {
    "title": "Connect your accounts",
    "loading": "Loading…",
    "intro": "Choose an app to connect.",
    "intro_user": "Connecting for {name}. Choose an app to connect.",
    "intro_reconnect": "Sign in again to keep this app connected: the existing connection is updated.",
    "search": "Search apps",
    "no_match": "No app matches your search.",
    "empty": "There is nothing to connect with this link.",
    "connect": "Connect",
    "connect_with": "Connect {name}",
    "back": "Back to the list",
    "close": "Close",
    "done": "Done",
    "retry": "Try again",
    "connected": "Connected",
    "success_title": "{name} is connected",
    "success_text": "You can close this window or connect another app.",
    "oauth_text": "A window opens where you sign in to {name} and approve access.",
    "waiting": "Finish signing in to {name} in the window that opened…",
    "show": "Show",
    "hide": "Hide",
    "optional": "optional",
    "required": "Fill in this field.",
    "bad_format": "This value does not have the expected format.",
    "example": "Example: {detail}",
    "unsupported": "This app cannot be connected from this page yet.",
    "err_session": "This link has expired or is not valid. Ask the app that sent you here for a new one.",
    "err_no_session": "This page was opened without a session. Go back to the app and start again.",
    "err_denied": "Access was not granted. Try again and approve access in the window that opens.",
    "err_credentials": "{name} did not accept these credentials. Check them and try again.",
    "err_popup_blocked": "Your browser blocked the sign-in window. Allow pop-ups for this site and try again.",
    "err_window_closed": "The sign-in window was closed before the connection was made.",
    "err_network": "The server could not be reached. Check your connection and try again.",
    "err_rate_limited": "Too many attempts. Wait a minute and try again.",
    "err_not_allowed": "This app cannot be connected with this link.",
    "err_invalid_input": "Some values are not valid. Check them and try again.",
    "err_provider": "{name} answered with an error: {detail}",
    "err_generic": "The connection could not be made. Try again; if it keeps failing, contact the app's support.",
    "field_apiKey": "API key",
    "field_username": "Username",
    "field_password": "Password",
    "field_client_id": "Client ID",
    "field_client_secret": "Client secret",
    "field_token_id": "Token ID",
    "field_token_secret": "Token secret",
    "field_organization_id": "Organization ID",
    "field_dev_key": "Developer key",
    "field_role_arn": "IAM role ARN",
    "field_region": "AWS region",
}

FR = {
    "title": "Connectez vos comptes",
    "loading": "Chargement…",
    "intro": "Choisissez une application à connecter.",
    "intro_user": "Connexion pour {name}. Choisissez une application à connecter.",
    "intro_reconnect": "Reconnectez-vous pour garder cette application connectée : la connexion existante est "
                       "mise à jour.",
    "search": "Rechercher une application",
    "no_match": "Aucune application ne correspond à votre recherche.",
    "empty": "Il n'y a rien à connecter avec ce lien.",
    "connect": "Connecter",
    "connect_with": "Connecter {name}",
    "back": "Retour à la liste",
    "close": "Fermer",
    "done": "Terminé",
    "retry": "Réessayer",
    "connected": "Connecté",
    "success_title": "{name} est connecté",
    "success_text": "Vous pouvez fermer cette fenêtre ou connecter une autre application.",
    "oauth_text": "Une fenêtre s'ouvre pour vous connecter à {name} et autoriser l'accès.",
    "waiting": "Terminez la connexion à {name} dans la fenêtre qui s'est ouverte…",
    "show": "Afficher",
    "hide": "Masquer",
    "optional": "facultatif",
    "required": "Remplissez ce champ.",
    "bad_format": "Cette valeur n'a pas le format attendu.",
    "example": "Exemple : {detail}",
    "unsupported": "Cette application ne peut pas encore être connectée depuis cette page.",
    "err_session": "Ce lien a expiré ou n'est pas valide. Demandez-en un nouveau à l'application qui vous a "
                   "envoyé ici.",
    "err_no_session": "Cette page a été ouverte sans session. Retournez dans l'application et recommencez.",
    "err_denied": "L'accès n'a pas été accordé. Réessayez et autorisez l'accès dans la fenêtre qui s'ouvre.",
    "err_credentials": "{name} n'a pas accepté ces identifiants. Vérifiez-les et réessayez.",
    "err_popup_blocked": "Votre navigateur a bloqué la fenêtre de connexion. Autorisez les fenêtres pop-up pour ce "
                         "site et réessayez.",
    "err_window_closed": "La fenêtre de connexion a été fermée avant la fin de la connexion.",
    "err_network": "Le serveur est injoignable. Vérifiez votre connexion et réessayez.",
    "err_rate_limited": "Trop de tentatives. Attendez une minute et réessayez.",
    "err_not_allowed": "Cette application ne peut pas être connectée avec ce lien.",
    "err_invalid_input": "Certaines valeurs ne sont pas valides. Vérifiez-les et réessayez.",
    "err_provider": "{name} a répondu par une erreur : {detail}",
    "err_generic": "La connexion n'a pas pu être établie. Réessayez ; si cela persiste, contactez le support de "
                   "l'application.",
    "field_apiKey": "Clé d'API",
    "field_username": "Nom d'utilisateur",
    "field_password": "Mot de passe",
    "field_client_id": "Identifiant client",
    "field_client_secret": "Secret client",
    "field_token_id": "Identifiant du jeton",
    "field_token_secret": "Secret du jeton",
    "field_organization_id": "Identifiant de l'organisation",
    "field_dev_key": "Clé de développeur",
    "field_role_arn": "ARN du rôle IAM",
    "field_region": "Région AWS",
}

LANGUAGES = {"en": EN, "fr": FR}
DEFAULT = "en"


def language(lang: str | None, accept_language: str | None) -> str:
    """The language code to render: `lang` if supported, else the browser's first supported one."""
    for tag in [lang or ""] + _accepted(accept_language or ""):
        code = tag.strip().lower().split("-")[0].split("_")[0]
        if code in LANGUAGES:
            return code
    return DEFAULT


def _accepted(header: str) -> list[str]:
    """Accept-Language's tags, best first (q=0 dropped)."""
    weighted = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        try:
            q = float(params.strip().removeprefix("q=")) if params.strip().startswith("q=") else 1.0
        except ValueError:
            q = 0.0
        if tag and q > 0:
            weighted.append((-q, index, tag))
    return [tag for _, _, tag in sorted(weighted)]


def strings(code: str) -> dict[str, str]:
    """Every string of the page in language `code`."""
    return LANGUAGES.get(code, EN)
