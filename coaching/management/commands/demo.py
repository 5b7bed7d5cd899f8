"""Make sure a demo gym and a demo clinician exist, and print how to use them (``make run``)."""

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


class Command(BaseCommand):
    help = (
        "Create the demo gym and the demo clinician login if missing, and print the API key, the admin "
        "URL and the login. Only a hash of the key is stored, so the key and password are kept in the "
        "git-ignored file .demo-credentials; running it again is safe and keeps all data."
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
        user = get_user_model().objects.filter(username=DEMO_CLINICIAN).first()
        if user is None or not saved.get("password") or not user.check_password(saved["password"]):
            # Never all digits, never common: it passes the password validators like any other.
            saved["password"] = saved.get("password") or f"demo-{secrets.token_hex(8)}"
            clinician_ensure(username=DEMO_CLINICIAN, password=saved["password"])
        path.write_text(json.dumps(saved, indent=2))
        path.chmod(0o600)
        base = f"http://127.0.0.1:{port}"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"Demo gym API key:   {saved['api_key']}",
                    f"Admin:              {base}/admin/  (login {DEMO_CLINICIAN} / {saved['password']})",
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
