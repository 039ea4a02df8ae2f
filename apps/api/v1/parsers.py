"""API v1's JSON parser: the depth-bounded decoder APIv3 uses too (apps.core.input_checks)."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from apps.core.errors import InvalidForm, ServiceError
from apps.core.input_checks import json_loads


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser recurses in the standard library's decoder, and a body of 100,000
    `[` ends in a RecursionError (a 500); this one refuses it with a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return json_loads(stream.read())
        except InvalidForm:
            raise  # per field, as the exception handler shows validation errors
        except ServiceError as error:
            raise ParseError(error.message) from error
