"""Make sure a demo gym and two demo clinicians exist, and print how to use them (``make run``).

Two clinicians, so that the whole sign-off cycle can be tried: one asks to publish a change, the
other approves it."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from coaching.models import Gym
from coaching.selectors import gym_for_key
from coaching.services import clinician_ensure, gym_create, gym_key_rotate

DEMO_GYM = "Demo gym"
DEMO_CLINICIAN = "clinician"
# The second clinician approves what the first asks to publish (and the other way round).
DEMO_SECOND_CLINICIAN = "second-clinician"
# Each clinician's key in the credentials file (the first one's is "password", as it always was).
PASSWORD_KEYS = {DEMO_CLINICIAN: "password", DEMO_SECOND_CLINICIAN: "second_password"}


class Command(BaseCommand):
    help = (
        "Create the demo gym and the two demo clinician logins if missing, and print the API key, the admin "
        "URL and both logins (one clinician asks to publish a change, the other approves it). Only a hash of "
        "the key is stored, so the key and passwords are kept in the git-ignored file .demo-credentials; "
        "running it again is safe and keeps all data."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")
        parser.add_argument("--credentials", default=str(Path(settings.BASE_DIR) / ".demo-credentials"))

    def handle(self, *args, port: str, credentials: str, **options) -> None:
        path = Path(credentials)
        saved = json.loads(path.read_text()) if path.exists() else {}
        gym = Gym.objects.filter(name=DEMO_GYM).first()
        if gym is None:
            gym, saved["api_key"] = gym_create(name=DEMO_GYM)
        elif not saved.get("api_key") or (gym_for_key(key=saved["api_key"]) or (None,))[0] != gym:
            saved["api_key"] = gym_key_rotate(gym=gym)  # the key was lost: issue a new one
        for username, key in PASSWORD_KEYS.items():
            user = get_user_model().objects.filter(username=username).first()
            if user is None or not saved.get(key) or not user.check_password(saved[key]):
                # Never all digits, never common: it passes the password validators like any other.
                saved[key] = saved.get(key) or f"demo-{secrets.token_hex(8)}"
                clinician_ensure(username=username, password=saved[key])
        path.write_text(json.dumps(saved, indent=2))
        path.chmod(0o600)
        base = f"http://127.0.0.1:{port}"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"Demo gym API key:   {saved['api_key']}",
                    f"Admin:              {base}/admin/",
                    f"  a clinician:      login {DEMO_CLINICIAN} / {saved['password']}",
                    f"  another one:      login {DEMO_SECOND_CLINICIAN} / {saved['second_password']}"
                    "  (approves what the first asks to publish, and the other way round)",
                    f"API docs:           {base}/api/docs/",
                    f"Try it:             curl -s -H 'Authorization: Bearer {saved['api_key']}' "
                    f"-H 'Content-Type: application/json' {base}/api/v1/events/ -d @- <<< "
                    '\'{"external_id": "demo-1", "member": "m-1", "type": "run", '
                    '"occurred_at": "2026-11-20T07:30:00+01:00", "data": {"distance_km": 6.2, '
                    '"duration_min": 38, "pain_during": 6}}\'',
                    f"(credentials kept in {path.name}, which git ignores)",
                    "",
                ]
            )
        )
