"""callqa: offline quality assurance for recorded helpdesk calls."""

__version__ = "0.1.0"
