from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('builds', '0005_buildtask_forked_from'),
    ]

    operations = [
        migrations.AddField(
            model_name='build',
            name='source_commit',
            field=models.CharField(blank=True, max_length=64),
        ),
    ]
