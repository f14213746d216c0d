from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0005_breakdown_estimates"),
    ]

    operations = [
        migrations.AddField(
            model_name="wavecomputation",
            name="run_generation",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
    ]
