from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('builds', '0006_build_web_host'),
    ]

    operations = [
        migrations.AddField(
            model_name='build',
            name='source_commit',
            field=models.CharField(blank=True, max_length=64),
        ),
    ]
