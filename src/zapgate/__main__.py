from zapgate.cli import app

app(prog_name="zapgate")
