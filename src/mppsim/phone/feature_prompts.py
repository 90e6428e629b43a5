"""What the contact-centre features say: auto attendant menu, call queue messages (issue 25).

The texts per language; scripts/make-feature-prompts speaks them with espeak-ng into
assets/features/<language>/<prompt>.wav, as the voicemail menu's prompts are made. A feature
speaks in its own language (Control Hub: Calling > Features > ... > General settings >
Language); en_gb and pt_pt fall back to en_us and pt_br, as the voicemail prompts do.

An auto attendant's menu is its greeting, then one "Press N." per key it has (in key order),
so the menu a caller hears follows the org file without a recording per attendant.
"""
from __future__ import annotations

from pathlib import Path

from .voicemail_menu import prompt_path

ROOT = Path(__file__).resolve().parents[1]
PROMPT_DIR = ROOT / "assets" / "features"
DEFAULT_LANGUAGE = "en_us"
FALLBACK = {"en_gb": "en_us", "pt_pt": "pt_br"}
KEY_PROMPTS = {"0": "press_0", "1": "press_1", "2": "press_2", "3": "press_3", "4": "press_4",
               "5": "press_5", "6": "press_6", "7": "press_7", "8": "press_8", "9": "press_9",
               "*": "press_star", "#": "press_pound"}
PROMPTS = ("aa_greeting", "aa_invalid", "aa_extension", "transferring",
           "queue_welcome", "queue_comfort", "goodbye", *KEY_PROMPTS.values())


def _keys(press: str, digits: dict[str, str]) -> dict[str, str]:
    return {KEY_PROMPTS[k]: press.format(word) for k, word in digits.items()}


_DIGITS_EN = {"0": "0", "1": "1", "2": "2", "3": "3", "4": "4", "5": "5", "6": "6", "7": "7", "8": "8",
              "9": "9", "*": "star", "#": "pound"}

TEXTS: dict[str, dict[str, str]] = {
    "en_us": {
        "aa_greeting": "Thank you for calling. Please listen to the following options.",
        "aa_invalid": "Sorry, that is not a valid option.",
        "aa_extension": "Please dial the extension, then press pound.",
        "transferring": "Please hold while we transfer your call.",
        "queue_welcome": "Thank you for calling. Your call will be answered by the next available agent.",
        "queue_comfort": "Thank you for waiting. All our agents are still busy. Please stay on the line.",
        "goodbye": "Goodbye.",
        **_keys("Press {}.", _DIGITS_EN),
    },
    "pl_pl": {
        "aa_greeting": "Dziękujemy za telefon. Prosimy wysłuchać następujących opcji.",
        "aa_invalid": "Niestety, to nie jest prawidłowy wybór.",
        "aa_extension": "Wybierz numer wewnętrzny, a następnie krzyżyk.",
        "transferring": "Proszę czekać, łączymy.",
        "queue_welcome": "Dziękujemy za telefon. Odbierze pierwszy wolny konsultant.",
        "queue_comfort": "Dziękujemy za cierpliwość. Wszyscy konsultanci są zajęci. Prosimy pozostać na linii.",
        "goodbye": "Do widzenia.",
        **_keys("Naciśnij {}.", {**_DIGITS_EN, "*": "gwiazdkę", "#": "krzyżyk"}),
    },
    "de_de": {
        "aa_greeting": "Vielen Dank für Ihren Anruf. Bitte hören Sie die folgenden Optionen.",
        "aa_invalid": "Diese Auswahl ist leider nicht gültig.",
        "aa_extension": "Bitte wählen Sie die Durchwahl und dann die Rautetaste.",
        "transferring": "Bitte warten Sie, wir verbinden Sie.",
        "queue_welcome": "Vielen Dank für Ihren Anruf. Der nächste freie Mitarbeiter ist gleich für Sie da.",
        "queue_comfort": "Vielen Dank für Ihre Geduld. Alle Mitarbeiter sind noch im Gespräch. Bitte bleiben Sie dran.",
        "goodbye": "Auf Wiederhören.",
        **_keys("Drücken Sie {}.", {**_DIGITS_EN, "*": "Stern", "#": "Raute"}),
    },
    "fr_fr": {
        "aa_greeting": "Merci de votre appel. Veuillez écouter les options suivantes.",
        "aa_invalid": "Désolé, ce choix n'est pas valide.",
        "aa_extension": "Composez le numéro de poste, puis la touche dièse.",
        "transferring": "Veuillez patienter, nous transférons votre appel.",
        "queue_welcome": "Merci de votre appel. Le prochain conseiller disponible va vous répondre.",
        "queue_comfort": "Merci de patienter. Tous nos conseillers sont occupés. Restez en ligne.",
        "goodbye": "Au revoir.",
        **_keys("Appuyez sur {}.", {**_DIGITS_EN, "*": "étoile", "#": "dièse"}),
    },
    "es_es": {
        "aa_greeting": "Gracias por su llamada. Escuche las siguientes opciones.",
        "aa_invalid": "Lo sentimos, esa opción no es válida.",
        "aa_extension": "Marque la extensión y después almohadilla.",
        "transferring": "Espere mientras transferimos su llamada.",
        "queue_welcome": "Gracias por su llamada. Le atenderá el próximo agente disponible.",
        "queue_comfort": "Gracias por esperar. Todos nuestros agentes están ocupados. No cuelgue.",
        "goodbye": "Adiós.",
        **_keys("Pulse {}.", {**_DIGITS_EN, "*": "asterisco", "#": "almohadilla"}),
    },
    "pt_br": {
        "aa_greeting": "Obrigado por ligar. Ouça as seguintes opções.",
        "aa_invalid": "Desculpe, essa opção não é válida.",
        "aa_extension": "Digite o ramal e depois cerquilha.",
        "transferring": "Aguarde enquanto transferimos sua chamada.",
        "queue_welcome": "Obrigado por ligar. O próximo atendente disponível vai atender.",
        "queue_comfort": "Obrigado por aguardar. Todos os atendentes estão ocupados. Permaneça na linha.",
        "goodbye": "Até logo.",
        **_keys("Pressione {}.", {**_DIGITS_EN, "*": "asterisco", "#": "cerquilha"}),
    },
    "bg_bg": {
        "aa_greeting": "Благодарим ви за обаждането. Моля, чуйте следните възможности.",
        "aa_invalid": "За съжаление, този избор не е валиден.",
        "aa_extension": "Моля, наберете вътрешния номер и после диез.",
        "transferring": "Моля, изчакайте, свързваме ви.",
        "queue_welcome": "Благодарим ви за обаждането. Ще ви отговори първият свободен служител.",
        "queue_comfort": "Благодарим ви за търпението. Всички служители са заети. Моля, останете на линия.",
        "goodbye": "Довиждане.",
        **_keys("Натиснете {}.", {**_DIGITS_EN, "*": "звезда", "#": "диез"}),
    },
}


def prompt_file(prompt: str, language: str | None) -> Path:
    """The WAV of a prompt in `language`, falling back (en_gb -> en_us, pt_pt -> pt_br, en_us)."""
    return prompt_path(PROMPT_DIR, prompt, language, allowed=PROMPTS, fallback=FALLBACK,
                       kind="feature", script="scripts/make-feature-prompts")


def menu_prompts(keys: list[str]) -> list[str]:
    """The auto attendant's menu: the greeting, then "Press N." for each key it has."""
    return ["aa_greeting", *(KEY_PROMPTS[k] for k in keys if k in KEY_PROMPTS)]
