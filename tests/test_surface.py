"""The public surface is small and deliberate."""

import sellerbench
from sellerbench import errors


def test_public_names_are_exactly_these():
    assert sorted(sellerbench.__all__) == sorted(
        [*errors.__all__, "Workbench", "__version__", "connect", "demo"]
    )


def test_every_error_class_is_importable_from_the_package():
    for name in errors.__all__:
        assert getattr(sellerbench, name) is getattr(errors, name)


def test_every_error_descends_from_the_one_base():
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.SellerbenchError)


def test_api_error_message_names_request_but_not_headers():
    exc = errors.ServerError("boom", status=503, code="X", method="GET", url="http://h/p")
    assert str(exc) == "503 X: boom (GET http://h/p)"
    assert exc.retryable
    assert not errors.AuthError("no").retryable
