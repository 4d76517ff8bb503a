"""The ragtune application: settings, prompting, generation, chat, CLI and web app."""
