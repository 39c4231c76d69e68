"""Examples of schemas with their own layout rules (a schema names one with "etl:layout": NAME)."""
