"""``python -m smart_suggest`` runs the same CLI as the ``smart-suggest`` script."""

from smart_suggest.cli import main

if __name__ == "__main__":
    main()
