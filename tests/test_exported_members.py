import toolauth


def test_all_is_sorted_and_complete():
    assert toolauth.__all__ == sorted(toolauth.__all__)
    import types

    public = {
        n
        for n in dir(toolauth)
        if not n.startswith("_") and not isinstance(getattr(toolauth, n), types.ModuleType)
    }
    assert public - {"annotations"} - set(toolauth.__all__) == set()


def test_public_classes_live_in_toolauth():
    for name in toolauth.__all__:
        obj = getattr(toolauth, name)
        if isinstance(obj, type):
            assert obj.__module__ == "toolauth", name


def test_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, toolauth; heavy = [m for m in ('asyncpg', 'langgraph', 'uvicorn', "
        "'starlette', 'langchain_core') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
