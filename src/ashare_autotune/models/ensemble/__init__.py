"""An ensemble behind the model protocol: members of other model packages, blended by day rank."""
