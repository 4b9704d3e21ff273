"""The WhatsApp server: hosts many sessions in one process."""
